"""A sampled scene as readable data: per beat and character, felt vs shown, mood, stance, behaviour.

`Scene` is what every export renders and what the JSON format is. `scene.vector()`
returns the flat state in the situation polytope's column order, so a scene can
be checked against its constraint set or fed back into the sampler.
"""
from __future__ import annotations

import torch
from pydantic import BaseModel, Field

from .layout import StateLayout
from .models import Behaviour, Cast, Situation
from .vocab import OCC_EMOTIONS, PAD, STANCE

# A felt/shown gap above this is worth a writer's attention (subtext).
SUBTEXT_THRESHOLD = 0.25


class Provenance(BaseModel):
    """Everything needed to regenerate the scene."""

    storydiff: str
    checkpoint: str
    seed: int
    sampler: str
    steps: int
    guidance: float = 0.0
    project: bool = True
    situation: str = ""
    sample: int = 0
    story: str = ""  # the story a scene was sampled in, and its place there (from 0): seed is the story's
    part: int = 0
    drafted: bool = False  # shaped by hand in the TUI (pins, edits, a story's scene resampled): no CLI call repeats it


class Subtext(BaseModel):
    """An emotion felt and shown at different intensities."""

    emotion: str
    felt: float
    shown: float


class CharacterBeat(BaseModel):
    character: str
    beat: int  # from 1
    felt: dict[str, float]
    shown: dict[str, float]
    mood: dict[str, float]
    stance: dict[str, dict[str, float]] = Field(default_factory=dict)
    behaviour: str | None = None
    behaviour_text: str | None = None
    subtext: list[Subtext] = Field(default_factory=list)
    binding: list[str] = Field(default_factory=list)

    def dominant(self, layer: str = "shown") -> tuple[str, float]:
        values = getattr(self, layer)
        emotion = max(values, key=values.get)
        return emotion, values[emotion]


class BeatEvent(BaseModel):
    beat: int
    id: str
    text: str


class Scene(BaseModel):
    situation: str
    title: str = ""
    setting: str = ""
    cast: list[str]
    names: dict[str, str]
    beats: int
    events: list[BeatEvent] = Field(default_factory=list)
    cells: list[list[CharacterBeat]]  # [beat][character in cast order]
    provenance: Provenance

    def cell(self, character: str, beat: int) -> CharacterBeat:
        """The state of one character at one beat (beats count from 1)."""
        return self.cells[beat - 1][self.cast.index(character)]

    def vector(self) -> list[float]:
        """Flat state in the polytope's column order (`StateLayout(cast, beats).names`)."""
        layout = StateLayout(self.cast, self.beats)
        return [self._value(name) for name in layout.names]

    def _value(self, name: str) -> float:
        stem, beat = name.rsplit("@", 1)
        character, layer, rest = stem.split(".", 2)
        cell = self.cell(character, int(beat))
        if layer == "stance":
            other, item = rest.split(".")
            return cell.stance[other][item]
        return getattr(cell, layer)[rest]

    @classmethod
    def from_tensor(cls, x: torch.Tensor, cast: Cast, situation: Situation, provenance: Provenance,
                    binding: list[str] | None = None) -> Scene:
        """Build from one `[characters, beats, features]` state (the layout of the situation's cast)."""
        layout = StateLayout(situation.cast, situation.beats)
        flat = layout.flatten(x.detach().to("cpu", torch.float64).unsqueeze(0))[0].tolist()
        values = dict(zip(layout.names, flat))
        bound_by = _binding_by_variable(binding or [], layout)
        cells: list[list[CharacterBeat]] = []
        for b in range(1, situation.beats + 1):
            before = {c.character: c.behaviour for c in cells[-1]} if cells else {}
            cells.append([_cell(cast, situation, cid, b, values, bound_by, before.get(cid))
                          for cid in situation.cast])
        return cls(
            situation=situation.id, title=situation.title, setting=situation.setting, cast=list(situation.cast),
            names={cid: cast[cid].name for cid in situation.cast}, beats=situation.beats,
            events=[BeatEvent(beat=e.beat, id=e.id, text=e.text) for e in sorted(situation.events, key=lambda e: e.beat)],
            cells=cells, provenance=provenance,
        )


def _cell(cast: Cast, situation: Situation, cid: str, beat: int, values: dict[str, float],
          bound_by: dict[tuple[str, int], list[str]], previous: str | None) -> CharacterBeat:
    def value(name: str) -> float:
        return round(values[f"{cid}.{name}@{beat}"], 6) + 0.0  # + 0.0: a rounded -0.0 reads as 0.0

    felt = {e: value(f"felt.{e}") for e in OCC_EMOTIONS}
    shown = {e: value(f"shown.{e}") for e in OCC_EMOTIONS}
    mood = {d: value(f"mood.{d}") for d in PAD}
    stance = {o: {s: value(f"stance.{o}.{s}") for s in STANCE} for o in situation.cast if o != cid}
    behaviour = choose_behaviour(cast[cid].behaviours, shown, mood, previous)
    subtext = [Subtext(emotion=e, felt=felt[e], shown=shown[e]) for e in OCC_EMOTIONS
               if abs(felt[e] - shown[e]) > SUBTEXT_THRESHOLD]
    return CharacterBeat(
        character=cid, beat=beat, felt=felt, shown=shown, mood=mood, stance=stance,
        behaviour=behaviour.id if behaviour else None, behaviour_text=behaviour.text if behaviour else None,
        subtext=sorted(subtext, key=lambda s: -abs(s.felt - s.shown)), binding=bound_by.get((cid, beat), []),
    )


# Squared PAD distance added to repeating last beat's behaviour: about a third of the way across
# one PAD axis (0.3² ≈ 0.1), so a clearly better fit still wins and a near tie changes the business.
REPEAT_PENALTY = 0.1


def shown_pad(shown: dict[str, float], mood: dict[str, float]) -> tuple[float, float, float]:
    """The PAD point an observer reads off a character: shown emotions through ALMA's table, then mood.

    Displayed emotions dominate what others see (Ekman & Friesen 1969); with
    nothing shown, the mood is all there is to read.
    """
    from .affect import EMOTION_PAD

    total = sum(shown.values())
    if total < 1e-6:
        return tuple(mood[d] for d in PAD)
    pad = [sum(shown[e] * EMOTION_PAD[e][k] for e in OCC_EMOTIONS) / total for k in range(3)]
    weight = min(1.0, total)
    return tuple(weight * p + (1 - weight) * mood[d] for p, d in zip(pad, PAD))


def choose_behaviour(repertoire: list[Behaviour], shown: dict[str, float], mood: dict[str, float],
                     previous: str | None = None) -> Behaviour | None:
    """The repertoire entry whose PAD signature is nearest what the character shows.

    The behaviour of the previous beat (`previous`, its id) pays REPEAT_PENALTY: a beat of
    business repeated beat after beat reads as a stuck record, so it is kept only when no
    other entry is nearly as close.
    """
    if not repertoire:
        return None
    p, a, d = shown_pad(shown, mood)

    def cost(b: Behaviour) -> float:
        near = (b.pleasure - p) ** 2 + (b.arousal - a) ** 2 + (b.dominance - d) ** 2
        return near + (REPEAT_PENALTY if b.id == previous else 0.0)

    return min(repertoire, key=cost)


def _binding_by_variable(binding: list[str], layout: StateLayout) -> dict[tuple[str, int], list[str]]:
    """Group binding row names by the (character, beat) they mention, for the inspector."""
    out: dict[tuple[str, int], list[str]] = {}
    for row in binding:
        name = row.split("/", 1)[-1]
        beat_part = name.rsplit("@", 1)[-1].split("-")[0]
        if not beat_part.isdigit():
            continue
        for cid in layout.cast:
            if name.startswith(f"{cid}.") or f".{cid}." in name or f":{cid}." in name:
                out.setdefault((cid, int(beat_part)), []).append(name)
    return out
