"""The simulator: random casts and situations, and the affect trajectories the literature predicts.

It is the teacher for the bundled prior (DESIGN §5), not the product. What it must get right is
direction and rough size (an insult raises distress and lowers trust, a public scene hides fear,
mood follows emotion) and that every trajectory lies inside the constraint set its cast and
situation compile to, because the sampler projects onto that set. The literature's tables (ALMA's
PAD points, OCC's appraisal rules, Mehrabian's temperament, audiences, display-rule defaults) live
in `affect` and are shared with the constraint compiler; this package adds what a generator needs:
distributions of traits, cultures, relations and events, and the dynamics between beats.
Constants marked "ours" are modelling choices, not published numbers.

The package: `config` (the generator's settings), `casts` (traits, cultures, display rules,
relations), `situations` (events, pins), `dynamics` (the trajectory between beats) and `scenes`
(all of it together, made feasible for the scene's constraint set).
"""
from __future__ import annotations

from .casts import random_cast, random_character, random_culture, random_personality
from .config import DEFAULT_CONFIG, SimulatorConfig, layout_for
from .dynamics import simulate
from .scenes import PROJECTION_TOL, Generated, InfeasibleScene, described, feasible, generate, generate_scene
from .situations import random_pins, random_situation

__all__ = [
    "DEFAULT_CONFIG", "PROJECTION_TOL", "Generated", "InfeasibleScene", "SimulatorConfig", "described", "feasible",
    "generate", "generate_scene", "layout_for", "random_cast", "random_character", "random_culture",
    "random_personality", "random_pins", "random_situation", "simulate",
]
