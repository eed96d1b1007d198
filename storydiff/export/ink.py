"""Ink (inkle's narrative scripting language): the scene as a script a game engine plays beat by beat.

One knot per beat (`=== beat_3 ===`); each character gets a line for what they
do and one for what they show. Machine-readable detail rides on ink tags, which
engines read from `story.currentTags` without showing them: `# character:`,
`# behaviour:`, `# mood:` and `# subtext:`. Each knot ends in a single choice
to the next beat, so a player paces the scene; the last one ends in `-> END`.
Several scenes run one after the other, knots prefixed `s2_`.
"""
from __future__ import annotations

import re

from ..render import (
    cues,
    format_emotions,
    mood_notes,
    part_labels,
    provenance_summary,
    shown_emotions,
    subtext_summary,
)
from ..scene import CharacterBeat, Scene
from .scenes import SceneOrScenes, as_list

# Ink syntax that could start inside writer-supplied text: logic, alternatives, tags, choice brackets,
# escapes, diverts, threads, glue and comments. Each is escaped with a backslash; for `//` and `/*` that is
# the second character, since comments are stripped before escapes are read.
_SPECIAL = re.compile(r"[\\{}|#\[\]]|-(?=>)|<(?=[-<>])|(?<=/)[/*]")
# What means something at the start of a line: choices, gathers, knots, logic, labels, TODO notes,
# and the statements (a character called Var has every line start with "VAR ").
_LEADING = ("*", "+", "-", "=", "~", "(", "TODO", "INCLUDE ", "VAR ", "CONST ", "LIST ", "EXTERNAL ")


def to_ink(scenes: SceneOrScenes) -> str:
    """An ink script that compiles with inklecate or inkjs and plays every beat to `-> END`."""
    many = as_list(scenes)
    titles = list(dict.fromkeys(s.title or s.situation for s in many))
    out = [f"// Exported by storydiff {many[0].provenance.storydiff}: one knot per beat.",
           f"# title: {_text(' / '.join(titles))}", f"-> {_knot(many, 0, 1)}", ""]
    for index, (scene, label) in enumerate(zip(many, part_labels(many))):
        out += _scene(many, index, label)
    return "\n".join(out).rstrip("\n") + "\n"


def _knot(scenes: list[Scene], index: int, beat: int) -> str:
    return f"beat_{beat}" if len(scenes) == 1 else f"s{index + 1}_beat_{beat}"


def _scene(scenes: list[Scene], index: int, label: str) -> list[str]:
    scene = scenes[index]
    tag, moods = cues(scene), mood_notes(scene)
    out: list[str] = []
    for beat in range(1, scene.beats + 1):
        out += [f"=== {_knot(scenes, index, beat)} ===", f"# beat: {beat}"]
        if beat == 1:
            heading = scene.title or scene.situation
            if len(scenes) > 1:
                heading += f" ({label})"
            out.append(_tagged(heading, [f"provenance: {provenance_summary(scene.provenance)}"]))
            if scene.setting:
                out += [_text(scene.setting)]
        out += [_tagged(e.text or e.id, [f"event: {e.id}"]) for e in scene.events if e.beat == beat]
        for cid in scene.cast:
            out += _character_lines(scene.cell(cid, beat), tag[cid], moods.get((cid, beat)))
        if beat < scene.beats:
            out += [f"+ [Next beat] -> {_knot(scenes, index, beat + 1)}", ""]
        elif index + 1 < len(scenes):
            out += [f"+ [Next scene] -> {_knot(scenes, index + 1, 1)}", ""]
        else:
            out += ["-> END", ""]
    return out


def _character_lines(cell: CharacterBeat, cue: str, mood: str | None) -> list[str]:
    """What the character does (tagged with the behaviour id), then what they show (tagged with subtext)."""
    does_tags = [f"character: {cell.character}", f"behaviour: {cell.behaviour}" if cell.behaviour else None]
    subtext = subtext_summary(cell)
    shows_tags = [f"character: {cell.character}", f"mood: {mood}" if mood else None,
                  f"subtext: {subtext}" if subtext else None]
    does = f"{cue} {cell.behaviour_text or 'waits'}."
    shows = f"{cue} shows {format_emotions(shown_emotions(cell)) or 'nothing'}."
    return [_tagged(does, does_tags), _tagged(shows, shows_tags)]


def _tagged(text: str, tags: list[str | None]) -> str:
    return _text(text) + "".join(f" # {_text(t)}" for t in tags if t)


def _text(text: str) -> str:
    """Writer text as literal ink content: one line, ink syntax escaped."""
    text = _SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(text.split()))
    return f"\\{text}" if text.startswith(_LEADING) else text
