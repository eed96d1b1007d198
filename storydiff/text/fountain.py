"""Fountain screenplays (https://fountain.io/syntax): scene headings, character cues, dialogue, action.

Only what the scorer needs is kept: who speaks what, in which scene. Parentheticals,
transitions, sections, synopses, centred text, the title page, [[notes]] and the
/* boneyard */ are dropped; notes and the boneyard keep their newlines, so line
numbers still point into the file. Action lines are read as stage directions
("Ilan storms out."). A character is on stage from their first line or entrance
until they leave or the scene ends; a voice off (V.O., O.S.) speaks without being on stage.
"""
from __future__ import annotations

import re
from pathlib import Path

from .scene import Speech, TextScene
from .stage import Stage

_HEADING = re.compile(r"^(?:int|ext|est|int\.?/ext|i/e)[. ]", re.IGNORECASE)
_SCENE_NUMBER = re.compile(r"\s*#[\w.-]+#\s*$")
_TITLE_KEY = re.compile(r"^[A-Za-z][A-Za-z ]*:")
_EXTENSION = re.compile(r"\s*\(.*?\)\s*")
_EMPHASIS = re.compile(r"[*_]+")
_OFFSCREEN = re.compile(r"\((?:V\.?O|O\.?S|O\.?C|OFF)\.?\)", re.IGNORECASE)


def _blank_out(text: str, pattern: str) -> str:
    """Remove matches but keep their newlines, so line numbers survive."""
    return re.sub(pattern, lambda m: "\n" * m.group().count("\n"), text, flags=re.DOTALL)


def _skip_title_page(lines: list[str]) -> int:
    """Index of the first line after the title page (0 when there is none)."""
    if not lines or not _TITLE_KEY.match(lines[0]):
        return 0
    for i, line in enumerate(lines):
        if not line.strip():
            return i + 1
    return len(lines)


def _cue(line: str) -> str | None:
    """The character name if the line is a character cue (`MARA`, `MARA (V.O.)`, `@McCLANE`, `ILAN ^`)."""
    text = line.strip()
    if text.startswith("@"):
        return _EXTENSION.sub(" ", text[1:]).rstrip("^ ").strip() or None
    name = _EXTENSION.sub(" ", text).rstrip("^ ").strip()
    if not name or name.endswith("TO:") or not any(c.isalpha() for c in name) or name != name.upper():
        return None
    return name


def _cue_at(lines: list[str], i: int) -> str | None:
    """A cue needs a blank line before it and dialogue right after it."""
    if (i > 0 and lines[i - 1].strip()) or i + 1 >= len(lines) or not lines[i + 1].strip():
        return None
    return None if _heading(lines[i]) is not None else _cue(lines[i])


def _heading(line: str) -> str | None:
    text = line.strip()
    if text.startswith(".") and not text.startswith(".."):
        return _SCENE_NUMBER.sub("", text[1:]).strip()
    if _HEADING.match(text):
        return _SCENE_NUMBER.sub("", text).strip()
    return None


def read_fountain(path: Path | str) -> list[TextScene]:
    """The scenes of a Fountain file that have dialogue, in order."""
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    raw = _blank_out(_blank_out(raw, r"/\*.*?\*/"), r"\[\[.*?\]\]")
    lines = raw.splitlines()
    start = _skip_title_page(lines)
    title = next((ln.split(":", 1)[1].strip() for ln in lines[:start] if ln.lower().startswith("title:")), "")
    cues = {c for i in range(start, len(lines)) if (c := _cue_at(lines, i))}
    scenes: list[TextScene] = []

    def new_scene(name: str) -> tuple[TextScene, Stage]:
        scene = TextScene(play=path.stem, title=title or path.stem, scene=name, source=str(path))
        scenes.append(scene)
        return scene, Stage(cues)

    scene, stage = new_scene("")
    i = start
    while i < len(lines):
        line = lines[i]
        heading = _heading(line) if i == start or not lines[i - 1].strip() else None
        cue = _cue_at(lines, i)
        if heading is not None:
            scene, stage = new_scene(heading)
            i += 1
        elif cue is not None:
            body, j = [], i + 1
            while j < len(lines) and lines[j].strip():
                text = lines[j].strip()
                if not (text.startswith("(") and text.endswith(")")):
                    body.append(text.lstrip("~"))
                j += 1
            if not _OFFSCREEN.search(line):
                stage.speak([cue])
            speech = " ".join(_EMPHASIS.sub("", " ".join(body)).split())
            if speech:
                scene.speeches.append(Speech((cue,), speech, i + 1, frozenset(stage.present)))
            i = j
        else:
            text = line.strip()
            if text and not text.startswith(("#", "=", ">", "[[")):
                stage.direct(_EMPHASIS.sub("", text.lstrip("!")))
            i += 1
    return [s for s in scenes if s.speeches]
