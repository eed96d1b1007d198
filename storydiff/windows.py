"""Scenes longer than the network was built for, denoised in overlapping windows (DESIGN §2).

The network learnt beat positions only as far as its longest training scene (24 beats for the
bundled checkpoint, `DenoiserConfig.window_beats`): past it, its estimates jitter from beat to
beat (a 64-beat storm changes 8× more per beat after beat 24 than before). A longer scene is
cut into windows of that many beats, neighbours overlapping by a third of a window;
each window is denoised on its own, and where windows overlap their clean-scene estimates
are cross-faded (MultiDiffusion, Bar-Tal et al. 2023: the fused estimate is the weighted
least-squares agreement of the windows'). On every sampler step each window then starts
from a state its neighbour helped shape, which is how the overlap is inpainted — jointly,
rather than window after window. The sampler and the projection still see the whole scene,
so its constraints hold across the seams.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .conditioning import SceneCondition

Denoise = Callable[[torch.Tensor, torch.Tensor, SceneCondition], torch.Tensor]


def overlap_for(size: int) -> int:
    """Beats two neighbouring windows share: a third of a window (8 of 24), so that the slow
    variables (mood, stance) have beats to agree over across a seam."""
    return max(1, size // 3)


def beat_windows(beats: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """`(start, stop)` windows of `size` beats covering `beats`, neighbours sharing at least `overlap`."""
    if beats <= size:
        return [(0, beats)]
    stride = size - overlap
    starts = [*range(0, beats - size, stride), beats - size]
    return [(start, start + size) for start in starts]


def fade(start: int, stop: int, overlap: int) -> torch.Tensor:
    """A window's weight per beat: rising over its first `overlap` beats, falling over its last.

    Where two windows overlap, one's weight falls as the other's rises, so the fused
    estimate slides from one window's to the next instead of jumping at a seam.
    """
    beat = torch.arange(start, stop)
    return torch.clamp(torch.minimum(beat - start + 1, stop - beat), max=overlap).float()


def denoise_in_windows(denoise: Denoise, x: torch.Tensor, sigma: torch.Tensor, cond: SceneCondition,
                       size: int) -> torch.Tensor:
    """`denoise(x, σ, cond)` for a `[batch, characters, beats, features]` x of any length, `size` beats at a time."""
    overlap = overlap_for(size)
    out = torch.zeros_like(x)
    total = torch.zeros(x.shape[2], dtype=x.dtype, device=x.device)
    for start, stop in beat_windows(x.shape[2], size, overlap):
        weight = fade(start, stop, overlap).to(x.device, x.dtype)
        estimate = denoise(x[:, :, start:stop], sigma, cond.beat_window(start, stop))
        out[:, :, start:stop] += estimate * weight[:, None]
        total[start:stop] += weight
    return out / total[:, None]
