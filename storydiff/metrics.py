"""Distribution distances for judging the prior: energy distance and memorisation."""
from __future__ import annotations

import torch


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Székely & Rizzo (2013) energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| between two samples `[n, d]`.

    Zero only when the distributions agree; unlike MMD it has no bandwidth to tune.
    """
    a, b = a.double().flatten(1), b.double().flatten(1)
    xy = torch.cdist(a, b).mean()
    xx = torch.cdist(a, a).sum() / max(a.shape[0] * (a.shape[0] - 1), 1)
    yy = torch.cdist(b, b).sum() / max(b.shape[0] * (b.shape[0] - 1), 1)
    return float(2 * xy - xx - yy)


def memorisation_ratio(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Per sample, distance to its nearest training scene over distance to the second nearest.

    A ratio near 0 means the sample copies one training scene (Yoon et al. 2023 use < 1/3).
    """
    d = torch.cdist(samples.double().flatten(1), train.double().flatten(1))
    two = d.topk(2, dim=1, largest=False).values
    return two[:, 0] / two[:, 1].clamp_min(1e-12)


def shuffle_beats(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A baseline with each scene's beats in random order: right marginals, no dramatic arc."""
    out = x.clone()
    for k in range(x.shape[0]):
        out[k] = x[k][:, torch.randperm(x.shape[2], generator=generator)]
    return out
