"""Held-out simulator scenes and the features quality benchmarks compare them on (DESIGN §5).

Shared by `prior_quality.py` and `sampling.py`, which run as scripts from this folder.
"""
from __future__ import annotations

import numpy as np
import torch

from storydiff.denoiser import pair_stance
from storydiff.layout import MOOD
from storydiff.models import Cast, Situation
from storydiff.simulator import feasible, generate_scene, simulate

HELD_OUT_SEED = 987_654  # never used for a training corpus
RESIMULATION_SEED = 55  # fresh simulator noise for the same held-out situations


def held_out_scene(k: int) -> tuple[Cast, Situation, torch.Tensor]:
    """The k-th held-out simulated situation, its cast, and its simulated scene `[C, T, F]`."""
    return generate_scene(np.random.default_rng([HELD_OUT_SEED, k]))


def resimulated_scene(k: int, cast: Cast, situation: Situation) -> torch.Tensor:
    """The k-th held-out situation simulated again with fresh noise: what a prior that had learnt the
    simulator's conditional distribution exactly would draw for it (the floor for samples of it)."""
    return feasible(cast, situation, simulate(cast, situation, np.random.default_rng([RESIMULATION_SEED, k])))


def transitions(x: torch.Tensor, characters: int, beats: int) -> torch.Tensor:
    """`[C, T, F]` → `[C·(T−1), 94]` consecutive-beat pairs of felt | shown | mood."""
    tokens = x[:characters, :beats, : MOOD.stop]
    return torch.cat([tokens[:, :-1], tokens[:, 1:]], dim=-1).reshape(-1, 2 * MOOD.stop)


def changes(x: torch.Tensor, characters: int, beats: int) -> torch.Tensor:
    """`[C, T, F]` → `[C·(T−1), 47]` beat-to-beat changes of felt | shown | mood: the arc itself, which
    shuffling the beats destroys while it keeps every beat's levels (and so most of `transitions`)."""
    tokens = x[:characters, :beats, : MOOD.stop]
    return (tokens[:, 1:] - tokens[:, :-1]).reshape(-1, MOOD.stop)


def stance_transitions(x: torch.Tensor, characters: int, beats: int) -> torch.Tensor:
    """`[C, T, F]` → `[C·(C−1)·(T−1), 6]`: each ordered pair's liking, dominance, trust at b and b+1."""
    stance = pair_stance(x[None, :characters, :beats], characters)[0]  # [i, T, j, 3]
    others = ~torch.eye(characters, dtype=torch.bool)
    pairs = stance.permute(0, 2, 1, 3)[others]  # [pairs, T, 3]
    return torch.cat([pairs[:, :-1], pairs[:, 1:]], dim=-1).reshape(-1, 2 * pairs.shape[-1])


def levels(x: torch.Tensor, characters: int, beats: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scene means: each character's mood `[C, 3]` and each ordered pair's stance `[C·(C−1), 3]`.

    Where a scene sits, as opposed to how it moves: a character's baseline mood and a pair's
    relation set these, so they show whether a prior reads what the characters bring in.
    """
    stance = pair_stance(x[None, :characters, :beats], characters)[0].mean(1)  # [i, j, 3]
    return x[:characters, :beats, MOOD].mean(1), stance[~torch.eye(characters, dtype=torch.bool)]
