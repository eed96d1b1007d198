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
    cues, format_emotions, mood_notes, part_labels, provenance_summary, shown_emotions, subtext_summary,
)
from ..scene import Scene
from .scenes import SceneOrScenes, as_list

# Ink syntax that could start inside writer-supplied text: logic, alternatives, tags, choice brackets,
# escapes, diverts, threads and glue. Each is escaped with a backslash.
_SPECIAL = re.compile(r"[\\{}|#\[\]]|-(?=>)|<(?=[-<>])")
# Comments are stripped before escapes are read, so `//` and `/*` are split by an empty expression instead.
_COMMENT = re.compile(r"/(?=[/*])")
# What means something at the start of a line: choices, gathers, knots, logic, labels, TODO notes.
_LEADING = ("*", "+", "-", "=", "~", "(", "TODO")


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
            out += [f"{_text(heading)} # provenance: {_text(provenance_summary(scene.provenance))}"]
            if scene.setting:
                out += [_text(scene.setting)]
        out += [_text(e.text or e.id) + f" # event: {_text(e.id)}" for e in scene.events if e.beat == beat]
        for cid in scene.cast:
            cell = scene.cell(cid, beat)
            does = f"{tag[cid]} {cell.behaviour_text or 'waits'}."
            out.append(_text(does) + f" # character: {_text(cid)}"
                       + (f" # behaviour: {_text(cell.behaviour)}" if cell.behaviour else ""))
            shows = f"{tag[cid]} shows {format_emotions(shown_emotions(cell)) or 'nothing'}."
            tags = [f"character: {cid}"]
            if (cid, beat) in moods:
                tags.append(f"mood: {moods[(cid, beat)]}")
            subtext = subtext_summary(cell)
            if subtext:
                tags.append(f"subtext: {subtext}")
            out.append(_text(shows) + "".join(f" # {_text(t)}" for t in tags))
        if beat < scene.beats:
            out += [f"+ [Next beat] -> {_knot(scenes, index, beat + 1)}", ""]
        elif index + 1 < len(scenes):
            out += [f"+ [Next scene] -> {_knot(scenes, index + 1, 1)}", ""]
        else:
            out += ["-> END", ""]
    return out


def _text(text: str) -> str:
    """Writer text as literal ink content: one line, ink syntax escaped."""
    text = _SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(text.split()))
    text = _COMMENT.sub('/{""}', text)
    return f"\\{text}" if text.startswith(_LEADING) else text
