"""Typed models of the four file formats (character, culture, situation, story).

Each element keeps its `source` (file, line, column) so later stages — the
constraint compiler, the infeasibility explainer, the TUI — can point a writer
at the exact place to fix. `source` is excluded from dumps and round trips.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from .vocab import BIG_FIVE, HOFSTEDE

Unit = float  # [0, 1]
Signed = float  # [-1, 1]


class Source(BaseModel):
    """Where an element was written; `attributes` holds (name, line, column) of each attribute."""

    model_config = ConfigDict(frozen=True)
    path: str
    line: int
    column: int = 1
    attributes: tuple[tuple[str, int, int], ...] = Field(default=(), repr=False)

    def at(self, attribute: str | None) -> Source:
        """Where one attribute of the element was written (the element itself when not known)."""
        for name, line, column in self.attributes:
            if name == attribute:
                return Source(path=self.path, line=line, column=column)
        return self


class Located(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Source | None = Field(default=None, exclude=True, repr=False)


class Personality(Located):
    """Big Five in [0, 1]; neuroticism as written (converted to stability once, in affect.py)."""

    openness: Unit = 0.5
    conscientiousness: Unit = 0.5
    extraversion: Unit = 0.5
    agreeableness: Unit = 0.5
    neuroticism: Unit = 0.5

    def vector(self) -> list[float]:
        return [getattr(self, t) for t in BIG_FIVE]


class Mood(Located):
    """A PAD point in [-1, 1]^3."""

    pleasure: Signed = 0.0
    arousal: Signed = 0.0
    dominance: Signed = 0.0


class MoodDynamics(Located):
    """ALMA-style pull of emotions on mood: mood@b = (1-pull)·mood@b-1 + pull·emotion-PAD ± band."""

    pull: Unit = 0.3
    band: Unit = 0.25


class EmotionRange(Located):
    """Felt intensity bounds for one emotion; `never` means max = 0."""

    emotion: str
    min: Unit = 0.0
    max: Unit = 1.0
    never: bool = False

    @property
    def upper(self) -> float:
        return 0.0 if self.never else self.max


class Volatility(Located):
    """Largest change of a felt emotion between consecutive beats (all emotions when `emotion` is None)."""

    max_step: Unit
    emotion: str | None = None


DisplayKind = Literal["max", "de-intensify", "intensify", "neutralise", "mask", "simulate"]
Audience = Literal["public", "private", "superior", "inferior", "intimate"]


class DisplayRule(Located):
    """What may be shown of an emotion before an audience (Ekman & Friesen 1969).

    `value` is c for max/simulate, k for de-intensify/mask, ε for neutralise;
    `show` is the emotion displayed instead (mask only).
    """

    emotion: str
    audience: Audience
    kind: DisplayKind
    value: float | None = None
    show: str | None = None


class Relation(Located):
    """Static stance toward another character, each in [-1, 1]."""

    to: str
    liking: Signed = 0.0
    dominance: Signed = 0.0
    trust: Signed = 0.0


class Behaviour(Located):
    """A repertoire entry: what the character does, and the PAD signature that selects it."""

    id: str
    text: str
    pleasure: Signed = 0.0
    arousal: Signed = 0.0
    dominance: Signed = 0.0


class Character(Located):
    id: str
    name: str
    description: str = ""
    culture: str | None = None
    personality: Personality = Field(default_factory=Personality)
    mood: Mood | None = None
    mood_dynamics: MoodDynamics | None = None
    ranges: list[EmotionRange] = Field(default_factory=list)
    volatility: list[Volatility] = Field(default_factory=list)
    display_rules: list[DisplayRule] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)
    behaviours: list[Behaviour] = Field(default_factory=list)

    def relation_to(self, other: str) -> Relation | None:
        return next((r for r in self.relations if r.to == other), None)


class Culture(Located):
    """Hofstede's six dimensions (0-100) and the display rules the culture teaches."""

    id: str
    name: str
    description: str = ""
    hofstede: dict[str, float] = Field(default_factory=lambda: {d: 50.0 for d in HOFSTEDE})
    display_rules: list[DisplayRule] = Field(default_factory=list)


class Appraisal(Located):
    """OCC appraisal of one event by one character (Ortony, Clore & Collins 1988)."""

    character: str
    desirability: Signed = 0.0
    praiseworthiness: Signed | None = None
    appealingness: Signed | None = None
    likelihood: Unit = 1.0


class Event(Located):
    """Something that happens at a beat; `status` is OCC's prospect-based distinction."""

    id: str
    beat: int = 0  # situation files always give it; `Agent.observe` sets it to the beat it applies to
    text: str = ""
    agent: str | None = None
    target: str | None = None
    status: Literal["actual", "prospective"] = "actual"
    appraisals: list[Appraisal] = Field(default_factory=list)


class Pin(Located):
    """An author's keyframe on one variable, e.g. `mara.felt.anger@8` ≥ 0.8."""

    var: str
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None
    equal: FiniteFloat | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        if self.equal is not None:
            return self.equal, self.equal
        return (-float("inf") if self.min is None else self.min, float("inf") if self.max is None else self.max)


class Situation(Located):
    id: str
    title: str = ""
    setting: str = ""
    publicness: Unit = 0.0
    cast: list[str]
    beats: int
    events: list[Event] = Field(default_factory=list)
    pins: list[Pin] = Field(default_factory=list)
    path: str | None = Field(default=None, exclude=True, repr=False)
    cast_sources: list[Source] = Field(default_factory=list, exclude=True, repr=False)  # one per `cast` entry
    library: Cast | None = Field(default=None, exclude=True, repr=False)  # the cast it was loaded with


class StoryScene(Located):
    """One situation of a story; `carry` lists what flows in from the previous scene's last beat."""

    href: str
    carry: list[Literal["mood", "stance"]] = Field(default_factory=lambda: ["mood", "stance"])


class Story(Located):
    id: str
    title: str = ""
    scenes: list[StoryScene]
    situations: list[Situation] = Field(default_factory=list, exclude=True, repr=False)


class Cast(BaseModel):
    """Characters and cultures found together; `cast["mara"]` gives a character."""

    characters: dict[str, Character] = Field(default_factory=dict)
    cultures: dict[str, Culture] = Field(default_factory=dict)
    root: str | None = None

    def __getitem__(self, character_id: str) -> Character:
        return self.characters[character_id]

    def __contains__(self, character_id: object) -> bool:
        return character_id in self.characters

    def __len__(self) -> int:
        return len(self.characters)

    def ids(self) -> list[str]:
        return list(self.characters)

    def culture_of(self, character_id: str) -> Culture | None:
        culture = self.characters[character_id].culture
        return self.cultures.get(culture) if culture else None


Situation.model_rebuild()
