"""Ink (inkle's narrative scripting language): the scene as a script a game engine plays beat by beat.

One knot per beat (`=== beat_3 ===`); each character gets a line for what they
do and one for what they show. Machine-readable detail rides on ink tags, which
engines read from `story.currentTags` without showing them: `# character:`,
`# behaviour:`, `# mood:` and `# subtext:`. Each knot ends in a single choice
to the next beat, so a player paces the scene; the last one ends in `-> END`.
Several scenes run one after the other, each headed and chosen by its label
(`sample 2, scene 3 of 7`) and its knots prefixed with the label's key
(`sample2_scene3_beat_1`).
"""
from __future__ import annotations

import re

from ..render import (
    SceneLabel,
    cues,
    format_emotions,
    mood_notes,
    provenance_summary,
    scene_labels,
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
    labels: list[SceneLabel | None] = [*scene_labels(many)] if len(many) > 1 else [None]
    titles = list(dict.fromkeys(s.title or s.situation for s in many))
    out = [f"// Exported by storydiff {many[0].provenance.storydiff}: one knot per beat.",
           f"# title: {_text(' / '.join(titles))}", f"-> {_knot(labels[0], 1)}", ""]
    for scene, label, following in zip(many, labels, [*labels[1:], None]):
        out += _scene(scene, label, following)
    return "\n".join(out).rstrip("\n") + "\n"


def _knot(label: SceneLabel | None, beat: int) -> str:
    """`beat_3` in a one-scene script, `sample2_scene3_beat_3` in a longer one."""
    return f"beat_{beat}" if label is None else f"{label.key}_beat_{beat}"


def _scene(scene: Scene, label: SceneLabel | None, following: SceneLabel | None) -> list[str]:
    """The scene's knots; the last one leads to the `following` scene, or ends the script."""
    tag, moods = cues(scene), mood_notes(scene)
    out: list[str] = []
    for beat in range(1, scene.beats + 1):
        out += [f"=== {_knot(label, beat)} ===", f"# beat: {beat}"]
        if beat == 1:
            heading = scene.title or scene.situation
            if label is not None:
                heading += f" ({label.text})"
            out.append(_tagged(heading, [f"provenance: {provenance_summary(scene.provenance)}"]))
            if scene.setting:
                out += [_text(scene.setting)]
        out += [_tagged(e.text or e.id, [f"event: {e.id}"]) for e in scene.events if e.beat == beat]
        for cid in scene.cast:
            out += _character_lines(scene.cell(cid, beat), tag[cid], moods.get((cid, beat)))
        if beat < scene.beats:
            out += [f"+ [Next beat] -> {_knot(label, beat + 1)}", ""]
        elif following is not None:
            out += [f"+ [Next: {following.text}] -> {_knot(following, 1)}", ""]
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
