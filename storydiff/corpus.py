"""Simulated corpora on disk (`storydiff corpus`): safetensors shards of padded scenes and a JSON manifest.

A shard holds `x` `[K, Cmax, Tmax, F]` float32, `mask` `[K, Cmax, Tmax, F]` (1 where a real variable
lives) and every SceneCondition field stacked as `cond.<field>`, written and read by `shards.save_shard`
and `shards.load_shard`, so the trainer reads simulated and real-text shards alike. Cmax and Tmax are
the generator's largest cast and scene. Scene i is drawn from `numpy.random.default_rng([seed, i])`:
shards are independent, so they are written one at a time (never the whole corpus in memory) or in
parallel, and the bytes depend only on (seed, n, shard size, generator parameters).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .conditioning import SceneCondition, condition_from
from .embedding import embed
from .fileio import write_atomic
from .layout import DEFAULT_MAX_CHARACTERS, n_features
from .limits import variable_limits
from .models import Cast
from .shards import Shard, load_shard, save_shard
from .simulator import (
    DEFAULT_CONFIG,
    PROJECTION_TOL,
    InfeasibleScene,
    SimulatorConfig,
    generate,
    layout_for,
)
from .vocab import OCC_EMOTIONS, PAD, STANCE

CORPUS_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = 4096


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of scene `index`: independent of every other scene, so any shard can be rebuilt alone."""
    return np.random.default_rng([seed, index])


def feature_names(max_characters: int = DEFAULT_MAX_CHARACTERS) -> list[str]:
    """One label per feature: `felt.anger`, `shown.fear`, `mood.pleasure`, `stance.2.trust` (slot 2)."""
    emotions = [f"{layer}.{e}" for layer in ("felt", "shown") for e in OCC_EMOTIONS]
    stance = [f"stance.{slot}.{s}" for slot in range(max_characters) for s in STANCE]
    return emotions + [f"mood.{d}" for d in PAD] + stance


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


@contextmanager
def _one_thread() -> Iterator[None]:
    """Scenes are small: torch's intra-op threads cost more than they save (on a 2-vCPU VM, ~15 ms of
    wake-up per operation against microseconds of work), so each writer uses one core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_shard(path: Path, seed: int, start: int, count: int, config: SimulatorConfig) -> int:
    """Generate scenes start … start+count−1 and write them as one padded shard; returns count.

    The file appears under its final name only when complete, so an interrupted run leaves no half shard.
    """
    slots, beats = config.max_characters, config.max_beats
    x = torch.zeros(count, slots, beats, n_features())
    mask = torch.zeros(count, slots, beats, n_features(), dtype=torch.bool)
    situations = []
    with _one_thread():
        for k in range(count):
            try:
                generated = generate(scene_rng(seed, start + k), config)
            except InfeasibleScene as e:
                raise InfeasibleScene(f"scene {start + k} of seed {seed} (regenerate it with "
                                      f"generate(scene_rng({seed}, {start + k}))): {e}") from e
            C, T = generated.scene.shape[:2]
            layout = layout_for(generated.situation)
            x[k, :C, :T] = generated.scene
            mask[k, :C, :T] = layout.mask()
            situations.append((generated.cast, generated.situation, variable_limits(generated.polytope, layout)))
        embedded = _embed_descriptions([cast for cast, _, _ in situations])
        conditions = [condition_from(cast, situation, embedded, limits=limits) for cast, situation, limits in situations]
    save_shard(path, x, mask, SceneCondition.stack(conditions, slots, beats))
    return count


def _embed_descriptions(casts: list[Cast]) -> Callable[[list[str]], torch.Tensor]:
    """Every description of a shard's casts embedded in one MiniLM pass (a third faster than a call per
    scene), served to `condition_from` as an embedder."""
    texts = list(dict.fromkeys(c.description.strip() for cast in casts for c in cast.characters.values()))
    vectors = dict(zip(texts, embed(texts), strict=True))
    return lambda batch: torch.stack([vectors[t] for t in batch])


def _write_shard_job(job: tuple[Path, int, int, int, SimulatorConfig]) -> int:
    return write_shard(*job)


def _run(jobs: list[tuple[Path, int, int, int, SimulatorConfig]], workers: int) -> Iterator[int]:
    """Scene counts of the written shards, in order, from `workers` processes (spawned: torch and fork
    do not mix)."""
    if workers <= 1:
        yield from map(_write_shard_job, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_write_shard_job, jobs)


def write_corpus(n: int, out_dir: Path | str, seed: int = 0, shard_size: int = DEFAULT_SHARD_SIZE,
                 config: SimulatorConfig = DEFAULT_CONFIG, workers: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> Path:
    """Write n simulated scenes as ⌈n / shard_size⌉ shards plus `manifest.json`; returns the manifest's path.

    `progress(scenes_done, n)` is called after each shard. The manifest is written last, so a folder
    with a manifest holds a complete corpus.
    """
    if n < 1 or shard_size < 1:
        raise ValueError(f"need n ≥ 1 and shard size ≥ 1 (got n={n}, shard size={shard_size})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out / shard_name(s), seed, start, min(shard_size, n - start), config)
            for s, start in enumerate(range(0, n, shard_size))]
    done = 0
    for count in _run(jobs, workers):
        done += count
        if progress:
            progress(done, n)
    manifest = {
        "version": CORPUS_VERSION, "storydiff": __version__, "seed": seed, "n": n, "shard_size": shard_size,
        "shards": [{"file": path.name, "count": count} for path, _, _, count, _ in jobs],
        "layout": manifest_layout(config.max_characters, config.max_beats),
        "generator": {**asdict(config), "projection_tol": PROJECTION_TOL},
    }
    return write_manifest(out, manifest)


def manifest_layout(characters: int, beats: int) -> dict:
    """A manifest's `layout`: the shards' padded cast and scene, and what each feature is."""
    return {"characters": characters, "beats": beats, "features": n_features(),
            "max_characters": DEFAULT_MAX_CHARACTERS, "feature_names": feature_names()}


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    """Write `manifest.json` atomically, last: a folder with a manifest holds a complete corpus."""
    path = out_dir / MANIFEST
    write_atomic(path, json.dumps(manifest, indent=1))
    return path


def read_manifest(corpus_dir: Path | str) -> dict:
    path = Path(corpus_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no {MANIFEST} in {corpus_dir}: not a finished corpus "
                                "(write one with `storydiff corpus --n N --out DIR`)")
    return json.loads(path.read_text())


def iterate_corpus(corpus_dir: Path | str) -> Iterator[tuple[torch.Tensor, torch.Tensor, SceneCondition]]:
    """(x, mask, condition) per shard, in manifest order, one shard in memory at a time."""
    for entry in read_manifest(corpus_dir)["shards"]:
        shard = load_shard(Path(corpus_dir) / entry["file"])
        yield shard.x, shard.mask, shard.cond


def load_corpus(corpus_dir: Path | str) -> Shard:
    """Every shard of a small corpus as one `shards.Shard` (index it with `Shard.batch`)."""
    parts = list(iterate_corpus(corpus_dir))
    cond = {f.name: torch.cat([getattr(c, f.name) for _, _, c in parts]) for f in fields(SceneCondition)}
    x, mask = (torch.cat([part[k] for part in parts]) for k in (0, 1))
    return Shard(x, mask, SceneCondition(**cond))


def cmd_corpus(args: argparse.Namespace) -> int:
    """Write a simulated corpus; progress and the rate go to stderr."""
    began = time.perf_counter()

    def report(done: int, n: int) -> None:
        print(f"{done}/{n} scenes, {done / (time.perf_counter() - began):.0f} scenes/s", file=sys.stderr)

    path = write_corpus(args.n, args.out, args.seed, args.shard_size, workers=args.workers, progress=report)
    print(path)
    return 0
