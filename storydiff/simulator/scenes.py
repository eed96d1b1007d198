"""Generated scenes: a random cast and situation, their trajectory, made feasible for their constraint set."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..constraints import compile_constraints
from ..description import describe
from ..models import Cast, Situation
from ..polytope import Polytope
from ..projection import project
from .casts import random_cast
from .config import DEFAULT_CONFIG, SimulatorConfig, layout_for
from .dynamics import simulate
from .situations import random_pins, random_situation

# DESIGN §4's tolerance. Scenes are stored as float32: `project` aims at tol/4 in float64 so that the
# rounding keeps every row within tol, and an unprojected trajectory is accepted on the same margin.
PROJECTION_TOL = 1e-6


class InfeasibleScene(ValueError):
    """A simulated scene that cannot be brought into its constraint set: the generator drew rules that
    contradict each other, which it is built never to do, so this is a bug to report, not to skip."""


def feasible(cast: Cast, situation: Situation, x: torch.Tensor, polytope: Polytope | None = None) -> torch.Tensor:
    """`x` (float32) moved onto the constraint set its cast and situation compile to (`polytope`, compiled
    here if not given), if not already in it.

    Training data must be feasible: the sampler projects onto this set, so a prior that learnt
    infeasible scenes would fight the projection at every step.
    """
    layout = layout_for(situation)
    if polytope is None:
        polytope = compile_constraints(cast, situation, layout=layout)
    y = layout.flatten(x.double().unsqueeze(0))
    if float(polytope.violation(y)) > PROJECTION_TOL / 4:
        try:
            y, _ = project(y, polytope, tol=PROJECTION_TOL)
        except ValueError as e:
            raise InfeasibleScene(f"situation '{situation.id}': {e}") from e
    y = y.float()
    violation = float(polytope.violation(y))
    if violation > PROJECTION_TOL:
        raise InfeasibleScene(f"situation '{situation.id}': its constraint set looks empty (after projection "
                              f"a row is still off by {violation:.2g})")
    return layout.unflatten(y, like=x.float().unsqueeze(0))[0]


@dataclass(frozen=True)
class Generated:
    """A generated scene and the constraint set it was made feasible for (a corpus stores its limits)."""

    cast: Cast
    situation: Situation
    scene: torch.Tensor  # [C, T, F] float32, inside `polytope`
    polytope: Polytope


def generate(rng: np.random.Generator, config: SimulatorConfig = DEFAULT_CONFIG) -> Generated:
    """A random cast, a random situation for it, and its feasible trajectory, with the situation's constraint set."""
    cast = random_cast(rng, config)
    situation = random_situation(rng, cast.ids(), config)
    x = simulate(cast, situation, rng)
    pins = random_pins(rng, situation, x, config.pin_p)
    if pins:
        situation = situation.model_copy(update={"pins": pins})
    polytope = compile_constraints(cast, situation, layout=layout_for(situation))
    return Generated(described(cast, rng), situation, feasible(cast, situation, x, polytope), polytope)


def generate_scene(rng: np.random.Generator,
                   config: SimulatorConfig = DEFAULT_CONFIG) -> tuple[Cast, Situation, torch.Tensor]:
    """A random cast, a random situation for it, and its feasible trajectory `[C, T, F]` (float32)."""
    generated = generate(rng, config)
    return generated.cast, generated.situation, generated.scene


def described(cast: Cast, rng: np.random.Generator) -> Cast:
    """The cast with a written description of each character (`description.describe`).

    Drawn last, from a generator of its own, so the scenes of a seed are the ones they were
    before characters were described.
    """
    words = np.random.default_rng(rng.integers(2**63))
    characters = {cid: c.model_copy(update={"description": describe(words, c)}) for cid, c in cast.characters.items()}
    return cast.model_copy(update={"characters": characters})
