"""What the constraint set says about each felt, shown and mood value on its own, as network input.

Ranges, "never", display caps, pins and continuity reach a sample through projection, which
moves it to the nearest point of the set: a boundary, not where the character would have
been. Told the same limits, the denoiser puts its estimate inside them in the first place.
Each one-variable row `lower ≤ a·y ≤ upper` bounds its column; per token (character, beat)
the input is how far those bounds cut into each value's natural range, from the top and from
the bottom, as a share of that range: 0 where the set leaves the value free, which is also
what real text (no constraints) and older corpora (limits not stored) carry.
"""
from __future__ import annotations

import torch

from .layout import MOOD, StateLayout
from .polytope import Polytope

TOKEN_VALUES = MOOD.stop  # felt | shown | mood: the values a token carries
LIMIT_FEATURES = 2 * TOKEN_VALUES  # cut from the top, then from the bottom


def column_bounds(polytope: Polytope) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column, the tightest bounds its one-variable rows give (±inf where none does)."""
    coo = polytope.A.to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    values = coo.values().to(torch.float64)
    m, n = polytope.shape
    single = torch.bincount(rows, minlength=m)[rows] == 1
    single &= values != 0
    rows, cols, a = rows[single], cols[single], values[single]
    lo = polytope.lower.to(torch.float64)[rows] / a
    hi = polytope.upper.to(torch.float64)[rows] / a
    lo, hi = torch.where(a > 0, lo, hi), torch.where(a > 0, hi, lo)
    lower = torch.full((n,), -torch.inf, dtype=torch.float64).scatter_reduce(0, cols, lo, "amax")
    upper = torch.full((n,), torch.inf, dtype=torch.float64).scatter_reduce(0, cols, hi, "amin")
    return lower, upper


def variable_limits(polytope: Polytope, layout: StateLayout) -> torch.Tensor:
    """`[characters, beats, LIMIT_FEATURES]` float32 for a polytope compiled on `layout`'s columns."""
    lower, upper = column_bounds(polytope)
    floor = layout.lower()
    span = 1.0 - floor
    from_top = ((1.0 - upper) / span).clamp(0.0, 1.0)
    from_bottom = ((lower - floor) / span).clamp(0.0, 1.0)
    grids = [layout.unflatten(v.unsqueeze(0))[0, ..., :TOKEN_VALUES] for v in (from_top, from_bottom)]
    return torch.cat(grids, dim=-1).float()
