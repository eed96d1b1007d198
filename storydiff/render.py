"""The text beat sheet, and the wording every export shares (cues, shown emotions, subtext, mood words,
and the labels that tell several scenes apart).

A writer reads a sampled scene here first, so it reads like a beat sheet, not a
dump: per beat the events, then per character what they do (the behaviour from
their repertoire), what they show, and — set apart — the subtext where felt and
shown differ. The footer carries the provenance needed to regenerate it.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from .scene import CharacterBeat, Provenance, Scene

# A shown emotion below this is too faint for a reader to name.
SHOWN_FLOOR = 0.15
# Emotions named per character and beat, shown or in the subtext; more reads as noise.
SHOWN_LIMIT = 3
# A mood word is repeated only when the PAD point has moved at least this far since it was last given.
MOOD_SHIFT = 0.25
# Within this of the origin on every axis a mood has no octant.
MOOD_NEUTRAL = 0.1
WIDTH = 88

# Mehrabian (1996), "Pleasure-arousal-dominance: A general framework for describing and measuring
# individual differences in temperament", Current Psychology 14(4):261-292: the eight octants of
# PAD space, keyed by the signs of (pleasure, arousal, dominance).
TEMPERAMENTS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "exuberant", (False, False, False): "bored",
    (True, True, False): "dependent", (False, False, True): "disdainful",
    (True, False, True): "relaxed", (False, True, False): "anxious",
    (True, False, False): "docile", (False, True, True): "hostile",
}


def cues(scene: Scene) -> dict[str, str]:
    """Each character's cue: the first name in capitals, the full name where first names clash."""
    first = {cid: scene.names[cid].split()[0] if scene.names[cid].strip() else cid for cid in scene.cast}
    clash = {name for name in first.values() if list(first.values()).count(name) > 1}
    return {cid: (scene.names[cid] if first[cid] in clash else first[cid]).upper() for cid in scene.cast}


def shown_emotions(cell: CharacterBeat) -> list[tuple[str, float]]:
    """The emotions a reader can name on the character, strongest first."""
    shown = sorted(((e, v) for e, v in cell.shown.items() if v >= SHOWN_FLOOR), key=lambda ev: -ev[1])
    return shown[:SHOWN_LIMIT]


def format_emotions(pairs: Sequence[tuple[str, float]]) -> str:
    """`anger 0.62, pride 0.30`."""
    return ", ".join(f"{e} {v:.2f}" for e, v in pairs)


def hidden(cell: CharacterBeat) -> list[tuple[str, float]]:
    """Subtext felt more than shown, with the felt intensity; widest gaps first."""
    return [(s.emotion, s.felt) for s in cell.subtext if s.felt > s.shown][:SHOWN_LIMIT]


def performed(cell: CharacterBeat) -> list[tuple[str, float, float]]:
    """Subtext shown more than felt: (emotion, shown, felt); widest gaps first."""
    return [(s.emotion, s.shown, s.felt) for s in cell.subtext if s.shown > s.felt][:SHOWN_LIMIT]


def subtext_summary(cell: CharacterBeat) -> str | None:
    """`shows calm; feels fear 0.70` — None where felt and shown agree (no `cell.subtext`)."""
    if not cell.subtext:
        return None
    put_on = ", ".join(f"{e} {s:.2f} (feels {f:.2f})" for e, s, f in performed(cell))
    dominant = shown_emotions(cell)
    summary = f"shows {put_on or (dominant[0][0] if dominant else 'calm')}"
    inner = hidden(cell)
    return f"{summary}; feels {format_emotions(inner)}" if inner else summary


def temperament(mood: dict[str, float]) -> str:
    """The Mehrabian (1996) octant word for a PAD mood, or `neutral` near the origin."""
    p, a, d = mood["pleasure"], mood["arousal"], mood["dominance"]
    if max(abs(p), abs(a), abs(d)) < MOOD_NEUTRAL:
        return "neutral"
    return TEMPERAMENTS[(p >= 0, a >= 0, d >= 0)]


def mood_notes(scene: Scene) -> dict[tuple[str, int], str]:
    """(character, beat) → mood word, at beat 1 and wherever the mood turns notably.

    A word is repeated only when it changes and the PAD point has moved by
    `MOOD_SHIFT` since it was last given, so a mood hovering on an octant
    boundary does not flicker.
    """
    notes: dict[tuple[str, int], str] = {}
    for cid in scene.cast:
        said, at = None, None
        for beat in range(1, scene.beats + 1):
            mood = scene.cell(cid, beat).mood
            word, point = temperament(mood), [mood[d] for d in ("pleasure", "arousal", "dominance")]
            if said is None or (word != said and math.dist(point, at) >= MOOD_SHIFT):
                notes[(cid, beat)] = word
                said, at = word, point
    return notes


def provenance_summary(p: Provenance) -> str:
    """One line naming everything that fixes the sample."""
    projected = "projected" if p.project else "not projected"
    # a story's scene is sampled one at a time from the story's seed: its batch place says nothing
    which = f"story {p.story}, scene {p.part + 1}" if p.story else f"sample {p.sample + 1}"
    return (f"storydiff {p.storydiff} · checkpoint {p.checkpoint} · situation {p.situation or '?'} · "
            f"seed {p.seed} · {which} · {p.sampler}, {p.steps} steps · "
            f"guidance {p.guidance:g} · {projected}" + (" · drafted by hand" if p.drafted else ""))


def regenerate_command(p: Provenance) -> str:
    """The CLI call that samples this scene again (same checkpoint, same device), or why there is none."""
    if p.drafted:
        return "no command repeats it: it was shaped by hand in the TUI (its draft file reopens it)"
    flags = f"--seed {p.seed} --sampler {p.sampler} --steps {p.steps} --guidance {p.guidance:g}"
    if not p.project:
        flags += " --no-project"
    if p.story:  # a story's scene starts where the one before it ended: sample the story again
        return f"storydiff sample <{p.story}.story.xml> {flags}  (scene {p.part + 1})"
    if p.sample:
        flags += f" -n {p.sample + 1}  (take sample {p.sample + 1})"
    return f"storydiff sample <{p.situation or 'situation'}.xml> {flags}"


def render_beat_sheet(scene: Scene, width: int = WIDTH) -> str:
    """The scene as a beat sheet a writer reads top to bottom, at most `width` columns."""
    tag = cues(scene)
    pad = min(max(len(c) for c in tag.values()) + 2, 16) if tag else 2
    moods = mood_notes(scene)
    out = _header(scene, tag, width)
    for beat in range(1, scene.beats + 1):
        out += ["", _rule(f"Beat {beat}", width)]
        for event in (e for e in scene.events if e.beat == beat):
            out += _wrap(f"! {event.text or event.id}", "  ", "    ", width)
        for cid in scene.cast:
            out += _character_lines(scene.cell(cid, beat), tag[cid], pad, moods.get((cid, beat)), width)
    out += ["", "─" * width]
    out += _wrap(provenance_summary(scene.provenance), "", "  ", width)
    out += _wrap(f"regenerate: {regenerate_command(scene.provenance)}", "", "  ", width)
    return "\n".join(out) + "\n"


def render_beat_sheets(scenes: Sequence[Scene], width: int = WIDTH) -> str:
    """Several scenes (a story, or n samples of one situation), each with its own footer."""
    parts = [f"{'═' * width}\n{label.text.upper()}\n\n{render_beat_sheet(s, width)}"
             for s, label in zip(scenes, scene_labels(scenes))]
    return "\n".join(parts)


@dataclass(frozen=True)
class SceneLabel:
    """Which of several exported scenes this is: its sample and its scene of the story, both from 1.

    `sample` is None where there is one sample (of a story), `scene` where the
    scenes are samples of one situation; one of them is always set.
    """

    sample: int | None = None
    samples: int = 1
    scene: int | None = None
    scenes: int = 1

    @property
    def text(self) -> str:
        """`sample 2, scene 3 of 7`, `scene 3 of 7` or `sample 2 of 4`: what headings say."""
        if self.scene is None:
            return f"sample {self.sample} of {self.samples}"
        where = f"scene {self.scene} of {self.scenes}"
        return f"sample {self.sample}, {where}" if self.sample is not None else where

    @property
    def key(self) -> str:
        """`sample2_scene3`: the same in an identifier (ink knots, EmotionML ids)."""
        return "_".join(f"{kind}{n}" for kind, n in (("sample", self.sample), ("scene", self.scene)) if n is not None)


def scene_labels(scenes: Sequence[Scene]) -> list[SceneLabel]:
    """A label per scene, each different, so headings and identifiers say which scene is which.

    Scenes of one story are numbered by their place in it (`provenance.part`);
    where the list holds several samples of the story (`storydiff sample
    STORY -n 2`), told apart by seed and sample and numbered in the order they
    come, each also names its sample; "of 7" counts up to the last place the
    list holds. Samples of one situation are `sample 2 of 4`; any other list
    is numbered scene by scene.
    """
    stories = {s.provenance.story for s in scenes}
    if len(stories) == 1 and stories != {""}:
        runs = [(s.provenance.seed, s.provenance.sample) for s in scenes]
        number = {run: k for k, run in enumerate(dict.fromkeys(runs), 1)}
        total = max(s.provenance.part for s in scenes) + 1
        labels = [SceneLabel(sample=number[run] if len(number) > 1 else None, samples=len(number),
                             scene=s.provenance.part + 1, scenes=total) for s, run in zip(scenes, runs)]
        if len(set(labels)) == len(labels):  # a scene given twice is labelled by its place in the list
            return labels
    n = len(scenes)
    if len({s.situation for s in scenes}) == 1:
        return [SceneLabel(sample=i, samples=n) for i in range(1, n + 1)]
    return [SceneLabel(scene=i, scenes=n) for i in range(1, n + 1)]


def _header(scene: Scene, tag: dict[str, str], width: int) -> list[str]:
    out = _wrap((scene.title or scene.situation).upper(), "", "", width)
    if scene.setting:
        out += _wrap(scene.setting, "", "", width)
    cast = ", ".join(f"{tag[cid]} ({scene.names[cid]})" for cid in scene.cast)
    out += _wrap(f"Cast: {cast} · {scene.beats} beats", "", "      ", width)
    return out


def _character_lines(cell: CharacterBeat, cue: str, pad: int, mood: str | None, width: int) -> list[str]:
    body = " " * (2 + pad)
    does = cell.behaviour_text or "(nothing from the repertoire)"
    out = _wrap(f"{cue:<{pad}}{does}", "  ", body, width)
    shows = f"shows: {format_emotions(shown_emotions(cell)) or 'nothing'}"
    if mood:
        shows += f" · mood: {mood}"
    out += _wrap(shows, body, body + "  ", width)
    subtext = subtext_summary(cell)
    if subtext:
        out += _wrap(f"┆ subtext: {subtext}", body + "  ", body + "  ┆ ", width)
    return out


def _rule(label: str, width: int) -> str:
    return f"── {label} " + "─" * max(0, width - len(label) - 4)


def _wrap(text: str, first: str, rest: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False) or [first.rstrip()]
