"""Held-out simulator scenes and the features quality benchmarks compare them on (DESIGN §5).

Shared by `prior_quality.py` and `sampling.py`, which run as scripts from this folder.
"""
from __future__ import annotations

import numpy as np
import torch

from storydiff.layout import MOOD
from storydiff.models import Cast, Situation
from storydiff.simulator import generate_scene

HELD_OUT_SEED = 987_654  # never used for a training corpus


def held_out_scene(k: int) -> tuple[Cast, Situation, torch.Tensor]:
    """The k-th held-out simulated situation, its cast, and its simulated scene `[C, T, F]`."""
    return generate_scene(np.random.default_rng([HELD_OUT_SEED, k]))


def transitions(x: torch.Tensor, characters: int, beats: int) -> torch.Tensor:
    """`[C, T, F]` → `[C·(T−1), 94]` consecutive-beat pairs of felt | shown | mood."""
    tokens = x[:characters, :beats, : MOOD.stop]
    return torch.cat([tokens[:, :-1], tokens[:, 1:]], dim=-1).reshape(-1, 2 * MOOD.stop)
