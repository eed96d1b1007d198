"""Training batches: scenes of similar size together, padded only as far as the largest of them."""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from test_denoiser import tiny_condition

from storydiff.conditioning import SceneCondition, condition_from
from storydiff.corpus import load_corpus, write_corpus
from storydiff.denoiser import Denoiser, DenoiserConfig
from storydiff.shards import Shard
from storydiff.simulator import generate_scene
from storydiff.train import TrainOptions, make_trainer

CONFIG = DenoiserConfig(width=32, depth=1, heads=2)


def _varied_shard(n: int = 64, characters: int = 4, beats: int = 8, seed: int = 0) -> Shard:
    """Scenes of 1…characters characters and 2…beats beats, padded to the largest."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, characters, beats, 47 + 3 * CONFIG.max_characters)
    mask = torch.zeros_like(x, dtype=torch.bool)
    cond = tiny_condition(n)
    cond = replace(cond, **{f.name: torch.zeros(n, characters, *getattr(cond, f.name).shape[2:])
                            for f in fields(cond) if f.name in ("traits", "culture", "description", "trait_mask",
                                                                "culture_mask", "description_mask", "characters")},
                   relations=torch.zeros(n, characters, characters, 3), beats=torch.zeros(n, beats),
                   events=torch.zeros(n, characters, beats, cond.events.shape[-1]),
                   limits=torch.zeros(n, characters, beats, cond.limits.shape[-1]))
    for k in range(n):
        c, t = int(torch.randint(1, characters + 1, (1,), generator=g)), int(torch.randint(2, beats + 1, (1,), generator=g))
        x[k, :c, :t, :47] = torch.rand(c, t, 47, generator=g)
        mask[k, :c, :t, :47] = True
        cond.characters[k, :c], cond.trait_mask[k, :c], cond.beats[k, :t] = 1, 1, 1
    return Shard(x, mask, cond)


def test_cropping_a_stacked_condition_undoes_its_padding():
    scenes = [generate_scene(np.random.default_rng([7, k]))[:2] for k in range(2)]
    conditions = [condition_from(cast, situation, None) for cast, situation in scenes]
    sizes = [(len(s.cast), s.beats) for _, s in scenes]
    small = min(range(2), key=lambda k: sizes[k][0] * sizes[k][1])
    padded = SceneCondition.stack(conditions, 8, 24).cropped(*sizes[small])
    alone = SceneCondition.stack([conditions[small]], *sizes[small])
    for f in fields(SceneCondition):
        assert torch.equal(getattr(padded, f.name)[small], getattr(alone, f.name)[0]), f.name


def test_a_batch_pads_only_to_its_largest_scene_and_the_network_sees_no_difference(tmp_path: Path):
    write_corpus(10, tmp_path / "corpus", seed=4)
    shard = load_corpus(tmp_path / "corpus")
    characters, beats = shard.extents
    index = torch.argsort(characters * 100 + beats)[:4]  # the smallest scenes
    x, mask, cond = shard.batch(index, torch.device("cpu"))
    assert x.shape[1:3] == (int(characters[index].max()), int(beats[index].max()))
    assert x.shape[1] < shard.x.shape[1] or x.shape[2] < shard.x.shape[2]
    full_cond = shard.cond.select(index)
    torch.manual_seed(0)
    model = Denoiser(CONFIG).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    noisy = shard.x[index] + 0.5 * torch.randn_like(shard.x[index]) * shard.mask[index]
    sigma = torch.full((len(index),), 0.5)
    with torch.no_grad():
        full = model(noisy, sigma, full_cond)[:, : x.shape[1], : x.shape[2]]
        cropped = model(noisy[:, : x.shape[1], : x.shape[2]], sigma, cond)
    assert torch.allclose(full * mask, cropped * mask, atol=1e-5)


def test_training_draws_every_scene_alike_in_batches_of_similar_size():
    shard = _varied_shard(256)
    opts = TrainOptions(steps=1, batch_size=4, log_every=10**9)
    trainer = make_trainer([], opts, torch.device("cpu"), CONFIG, shards=[shard])
    characters, beats = shard.extents
    draws = [trainer._draw(0) for _ in range(8000)]
    counts = torch.bincount(torch.cat(draws), minlength=len(shard)).float()
    assert counts.min() > 0.6 * counts.mean() and counts.max() < 1.4 * counts.mean()
    assert all(len(set(d.tolist())) == len(d) for d in draws)  # no scene twice in a batch

    def padded(index: torch.Tensor) -> float:
        return float(characters[index].max() * beats[index].max())

    g = torch.Generator().manual_seed(1)
    at_random = sum(padded(torch.randperm(len(shard), generator=g)[:4]) for _ in range(8000))
    assert sum(padded(d) for d in draws) < 0.65 * at_random  # 0.55 measured
