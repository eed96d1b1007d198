"""Prior quality on held-out real drama: shown affect of speakers in plays never trained on.

Real text observes only the shown emotions of a character at a beat where they speak, so
the comparison is on *observed transitions*: a character's shown block at beat b and b+1
where they speak in both (44 numbers), and on the *changes* between the two (22). For
every held-out window the prior samples a scene under that window's condition (its cast
size and length; no traits, cultures or events — the null condition real text trains with;
`from_text` = 1), unprojected (a play has no character files), and its transitions are
read at the same positions. A text scene's state is what a reader observes — the shown
block of whoever speaks at each beat — so sampling noises and denoises exactly those
variables, as training does (its loss and its noise cover the observed variables only),
the way the engine samples a situation's real variables and leaves padding at zero.
Sampling every variable instead feeds the network noise where training never put any
(felt, mood and stance of a play), and the prior's real-play distance is then 2-20× worse.
Reference points, in the same run: the training plays' own distance to the held-out plays
(the floor) and the training plays with their beats shuffled (no sense of time).

Shards come from `storydiff.text.text_corpus` + `stack_corpus` on `shakespeare_split`.
"""
from __future__ import annotations

import torch

from storydiff.conditioning import SceneCondition
from storydiff.engine import Engine
from storydiff.layout import SHOWN
from storydiff.metrics import energy_distance
from storydiff.sampling import SAMPLERS, sigmas_for
from storydiff.shards import Shard, load_shard


def observed_transitions(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`[K, C, T, F]` scenes → `[N, 44]` shown blocks at b and b+1 where the character speaks in both."""
    spoke = mask[..., SHOWN].all(-1)
    both = spoke[:, :, :-1] & spoke[:, :, 1:]
    shown = x[..., SHOWN]
    return torch.cat([shown[:, :, :-1], shown[:, :, 1:]], dim=-1)[both]


def distances(x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Energy distances of observed transitions and of their changes (b+1 minus b) to `target`'s."""
    ours, half = observed_transitions(x, mask), SHOWN.stop - SHOWN.start
    return (energy_distance(ours, target),
            energy_distance(ours[:, half:] - ours[:, :half], target[:, half:] - target[:, :half]))


def shuffled(shard: Shard, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window's real beats in random order, observations and masks moved together."""
    x, mask = shard.x.clone(), shard.mask.clone()
    for k in range(len(shard)):
        T = int(shard.cond.beats[k].sum())
        order = torch.randperm(T, generator=generator)
        x[k, :, :T], mask[k, :, :T] = shard.x[k, :, order], shard.mask[k, :, order]
    return x, mask


@torch.no_grad()
def sample_like(engine: Engine, cond: SceneCondition, observed: torch.Tensor, sampler: str, steps: int,
                seed: int, batch: int = 64) -> torch.Tensor:
    """Unprojected scenes under the given conditions, over the `observed` variables, `batch` windows a call."""
    cfg = engine.model.config
    sigmas = sigmas_for(sampler, steps, cfg.sigma_min, cfg.sigma_max)
    out = []
    for start in range(0, observed.shape[0], batch):
        part = cond.select(slice(start, start + batch)).to(engine.device)
        live = observed[start:start + batch].to(engine.device, torch.float32)
        generator = torch.Generator().manual_seed(seed + start)
        x = torch.randn(live.shape, generator=generator).to(engine.device) * sigmas[0]

        def denoise(x: torch.Tensor, sigma: float, part: SceneCondition = part,
                    live: torch.Tensor = live) -> torch.Tensor:
            return engine.model(x, torch.full((x.shape[0],), sigma, device=x.device), part) * live

        step = None
        for step in SAMPLERS[sampler](denoise, x * live, sigmas, None, generator):
            pass
        out.append(step.x0_hat.cpu())
    return torch.cat(out)


def beat_memory(x: torch.Tensor, mask: torch.Tensor) -> float:
    """How much more a speaker's shown affect resembles their previous spoken beat than one three back.

    Mean correlation of a speaker's shown blocks (their mean in the window removed) one spoken
    beat apart, minus the same three apart: removing the mean biases both alike, so the
    difference is the short-range memory an arc would leave, and a shuffled scene has none.
    """
    spoke = mask[..., SHOWN].all(-1)
    products = {1: [], 3: []}
    for k, c in torch.nonzero(spoke.sum(-1) >= 5).tolist():
        s = x[k, c, spoke[k, c]][:, SHOWN]
        s = s - s.mean(0)
        for lag, out in products.items():
            out.append(torch.stack([s[:-lag], s[lag:]]))
    corr = {}
    for lag, pairs in products.items():
        a, b = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
        corr[lag] = float(((a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(1e-12)).mean())
    return corr[1] - corr[3]


def text_rows(engine: Engine, heldout: str, train: str | None, sampler: str, steps: int,
              seed: int = 0) -> list[tuple[str, tuple[float, ...]]]:
    """(name, (energy distances to the held-out plays' observed transitions and changes, beat memory))
    for the held-out plays themselves, samples and baselines."""
    held = load_shard(heldout)
    target = observed_transitions(held.x, held.mask)
    samples = sample_like(engine, held.cond, held.mask, sampler, steps, seed)
    rows = [("held-out plays", (float("nan"), float("nan"), beat_memory(held.x, held.mask))),
            ("samples (unprojected)", (*distances(samples, held.mask, target), beat_memory(samples, held.mask)))]
    if train:
        shard = load_shard(train)
        rows.append(("training plays", (*distances(shard.x, shard.mask, target), beat_memory(shard.x, shard.mask))))
        x, mask = shuffled(shard, torch.Generator().manual_seed(seed))
        rows.append(("training plays, beats shuffled", (*distances(x, mask, target), beat_memory(x, mask))))
    return rows
