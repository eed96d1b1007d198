"""Speaker-labelled plain text: `NAME: line`, the way transcripts and many play texts are typed.

A speech runs from its `NAME:` line to the next blank line, speaker line or direction.
A direction is a line in (parentheses) or [brackets], or one that begins with
Enter / Exit / Exeunt. Scenes break at a heading line (`ACT II`, `SCENE 2`,
`Act 1, Scene 3`: ACT or SCENE and a number or roman numeral) or at two or more
blank lines in a row.
"""
from __future__ import annotations

import re
from pathlib import Path

from .scene import Speech, TextScene
from .stage import Stage

_SPEAKER = re.compile(r"^\s*([A-Z][\w.'’-]*(?:[ \t]+[\w.'’-]+){0,3})[ \t]*:[ \t]*(.*)$")
_HEADING = re.compile(r"^\s*(?:act|scene)\s+(?:\d+|[ivxlc]+)\b.{0,80}$", re.IGNORECASE)
_DIRECTION = re.compile(r"^\s*(?:\((.*)\)|\[(.*)\]|((?:re-?)?enter\b.*|exit\b.*|exeunt\b.*))\s*$", re.IGNORECASE)


def read_plain(path: Path | str) -> list[TextScene]:
    """The scenes of a speaker-labelled text file that have speeches, in order."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    speakers = {m.group(1).strip() for ln in lines if (m := _SPEAKER.match(ln)) and not _HEADING.match(ln)}
    scenes: list[TextScene] = []
    act = ""

    def new_scene(name: str) -> Stage:
        scenes.append(TextScene(play=path.stem, title=path.stem, scene=name, source=str(path)))
        return Stage(speakers)

    stage = new_scene("scene 1")
    speech: list[str] = []  # [speaker, text...] of the speech being read
    start, blanks = 0, 0

    def flush() -> None:
        if speech and " ".join(speech[1:]).strip():
            who = (speech[0],)
            scenes[-1].speeches.append(Speech(who, " ".join(speech[1:]).strip(), start, frozenset(stage.present)))
        speech.clear()

    for n, line in enumerate(lines, start=1):
        if not line.strip():
            flush()
            blanks += 1
            continue
        if blanks >= 2 and scenes[-1].speeches:
            stage = new_scene(f"scene {len(scenes) + 1}")
        blanks = 0
        if _HEADING.match(line):
            flush()
            heading = " ".join(line.split())
            act = heading if heading.lower().startswith("act") else act
            name = heading if heading.lower().startswith("act") else ", ".join(p for p in (act, heading) if p)
            stage = new_scene(name) if scenes[-1].speeches else stage
            scenes[-1].scene = name
        elif (d := _DIRECTION.match(line)) is not None:
            flush()
            stage.direct(next(g for g in d.groups() if g is not None))
        elif (m := _SPEAKER.match(line)) is not None:
            flush()
            stage.speak([m.group(1).strip()])
            speech[:], start = [m.group(1).strip(), m.group(2)], n
        elif speech:
            speech.append(line.strip())
        else:
            stage.direct(line)
    flush()
    return [s for s in scenes if s.speeches]
