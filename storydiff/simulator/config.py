"""The generator's settings, and the layouts its scenes share."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..layout import StateLayout
from ..models import Situation


def layout_for(situation: Situation) -> StateLayout:
    """The situation's StateLayout, shared between scenes: simulated casts are named c1, c2, …, so a
    corpus has only (cast sizes × lengths) distinct layouts, and building one costs as much as simulating."""
    return _layout(tuple(situation.cast), situation.beats)


@lru_cache(maxsize=512)
def _layout(cast: tuple[str, ...], beats: int) -> StateLayout:
    return StateLayout(list(cast), beats)


@dataclass(frozen=True)
class SimulatorConfig:
    """The generator's knobs; recorded in a corpus manifest so a corpus can be regenerated."""

    cast_weights: tuple[float, ...] = (0.35, 0.25, 0.18, 0.12, 0.10)  # casts of 2..6: two-handers lead (ours)
    large_cast_p: float = 0.05      # occasionally a crowd of 7-8
    max_characters: int = 8
    min_beats: int = 6
    max_beats: int = 24
    max_events: int = 4
    pin_p: float = 0.15
    no_culture_p: float = 0.1       # a character without a culture trains the culture-null condition
    second_culture_p: float = 0.3
    relation_p: float = 0.85        # each ordered pair writes a relation with this probability


DEFAULT_CONFIG = SimulatorConfig()


def typed_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A uniform draw rounded to 2 decimals, as a writer would type it."""
    return round(float(rng.uniform(lo, hi)), 2)
