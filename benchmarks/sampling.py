"""Samplers compared (DESIGN §6, §10): where the time goes, quality against network evaluations,
how far x0_hat still moves on late steps, and cost against scene size.

    python benchmarks/sampling.py [--quick] [--device cpu|cuda] [--checkpoint PATH] [--situations M]

1. Time split per sampler at the default step count, for a batch of 1 and of 64 scenes of the
   bundled storm situation: network (every denoiser forward, guidance included), projection
   (`storydiff.project`), and the rest (sampler arithmetic, flattening, inpainting, Python), as
   ms per scene and as shares of the total. The network and the projection are timed by wrapping
   them in place, synchronising the GPU around each call; the total comes from a separate run
   without the wrappers.
2. Quality against NFE for euler, heun, ddim and pyuan at several step counts: energy distance
   between consecutive-beat transitions of sampled scenes and of M held-out simulated scenes (the
   prior-quality benchmark's measure), with projection on. Each situation is sampled 5 times in one
   batch (independent noise draws; the seed differs per situation); replicate r gathers the r-th
   draw of every situation, so the spread is the standard deviation over 5 sample sets. Also the
   share of scenes breaking a hard constraint (max violation > 1e-6) with and without projection.
3. Late-step convergence: the RMS per variable of x0_hat_k − x0_hat_{k−1} on the last steps, at
   the default step count (the projection benchmark's warm case assumes 5% of a variable's range).
4. Cost against cast size and beats (simulated situations, default sampler and steps).

The cheapest sampler and step count whose energy distance lies within the default's spread
(mean ≤ default mean + one standard deviation) is printed last: the choice for fast online use.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from heldout import held_out_scene, transitions

import storydiff
from storydiff import projection
from storydiff.engine import DEFAULT_SAMPLER, DEFAULT_STEPS, Engine, Run
from storydiff.metrics import energy_distance
from storydiff.sampling import SAMPLERS, Step, network_evaluations, sigmas_for
from storydiff.simulator import DEFAULT_CONFIG, random_cast, random_situation

ROOT = Path(__file__).resolve().parents[1]
REPLICATES = 5
VIOLATION = 1e-6
SIZE_SEED = 424_242
STEPS = {"full": {"euler": [3, 4, 6, 8, 12, 25, 50], "ddim": [3, 4, 6, 8, 12, 25, 50],
                  "pyuan": [3, 4, 6, 8, 12, 25, 50], "heun": [2, 3, 4, 6, 12, 25]},
         "quick": {"euler": [4, 12], "ddim": [4, 12, 25], "pyuan": [4, 6, 12], "heun": [3, 6, 12]}}
SIZES = {"full": ([2, 4, 8, 16], [8, 16, 32, 64], 16), "quick": ([2, 4, 8], [8, 16, 32], 4)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Seconds spent inside the calls it wraps."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, 0.0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            _sync(self.device)
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _sync(self.device)
                self.seconds += time.perf_counter() - began

        return timed


@contextmanager
def timed_parts(engine: Engine) -> Iterator[tuple[Stopwatch, Stopwatch]]:
    """Time the denoiser's forward and `storydiff.project` while sampling (restored afterwards)."""
    network, projecting = Stopwatch(engine.device), Stopwatch(engine.device)
    model, project = engine.model, projection.project
    model.forward = network.wrap(model.forward)  # an instance attribute shadows the class's method
    projection.project = projecting.wrap(project)  # the engine looks it up on every run
    try:
        yield network, projecting
    finally:
        del model.forward
        projection.project = project


def drain(steps: Iterator[Step], each: Callable[[Step], None] | None = None) -> Step:
    last = None
    for last in steps:
        if each is not None:
            each(last)
    return last


def wall(engine: Engine, run: Run) -> float:
    _sync(engine.device)
    began = time.perf_counter()
    drain(engine.denoise(run))
    _sync(engine.device)
    return time.perf_counter() - began


def with_sampler(engine: Engine, run: Run, sampler: str, steps: int, project: bool = True) -> Run:
    cfg = engine.model.config
    return dataclasses.replace(run, sampler=sampler, steps=steps, project=project,
                               sigmas=sigmas_for(sampler, steps, cfg.sigma_min, cfg.sigma_max))


def split(engine: Engine, run: Run, repeats: int) -> dict[str, float]:
    """Seconds per scene: total (uninstrumented, best of `repeats`) and network / projection / rest."""
    drain(engine.denoise(run))  # warm-up: caches, CUDA kernels
    total = min(wall(engine, run) for _ in range(repeats))
    timings = []
    for _ in range(repeats):
        with timed_parts(engine) as (network, projecting):
            timings.append((wall(engine, run), network.seconds, projecting.seconds))
    instrumented, network_s, projection_s = min(timings)
    rest = max(instrumented - network_s - projection_s, 0.0)
    scale = total / instrumented  # the wrappers' synchronisation costs a little; share it out
    return {"total": total / run.n, "network": network_s * scale / run.n,
            "projection": projection_s * scale / run.n, "rest": rest * scale / run.n}


def storm(engine: Engine, n: int) -> Run:
    cast = storydiff.load_characters(ROOT / "characters")
    situation = storydiff.load_situation(ROOT / "characters" / "situations" / "storm.situation.xml", cast)
    return engine.prepare(situation, cast=cast, n=n, seed=0)


def report_split(engine: Engine, batches: list[int], repeats: int) -> None:
    print(f"\n### Time split at {DEFAULT_STEPS} steps (storm: 3 characters × "
          f"{storm(engine, 1).situation.beats} beats)\n")
    print("| sampler | NFE | batch | ms/scene | network | projection | rest | network share "
          "| projection + rest share |")
    print("|---|---|---|---|---|---|---|---|---|")
    for batch in batches:
        base = storm(engine, batch)
        for sampler in SAMPLERS:
            t = split(engine, with_sampler(engine, base, sampler, DEFAULT_STEPS), repeats)
            over = t["projection"] + t["rest"]
            print(f"| {sampler} | {network_evaluations(sampler, DEFAULT_STEPS)} | {batch} | {1e3 * t['total']:.2f} "
                  f"| {1e3 * t['network']:.2f} | {1e3 * t['projection']:.2f} | {1e3 * t['rest']:.2f} "
                  f"| {t['network'] / t['total']:.0%} | {over / t['total']:.0%} |")


@dataclasses.dataclass
class Quality:
    """One (sampler, steps) over all held-out situations."""

    sampler: str
    steps: int
    seconds: float = 0.0
    scenes: int = 0
    projected: list[list[torch.Tensor]] = dataclasses.field(default_factory=lambda: [[] for _ in range(REPLICATES)])
    raw: list[list[torch.Tensor]] = dataclasses.field(default_factory=lambda: [[] for _ in range(REPLICATES)])
    violating: list[bool] = dataclasses.field(default_factory=list)
    violating_raw: list[bool] = dataclasses.field(default_factory=list)
    moves: list[list[float]] = dataclasses.field(default_factory=list)  # per situation, per step: RMS Δx0_hat

    @property
    def nfe(self) -> int:
        return network_evaluations(self.sampler, self.steps)

    def distances(self, held: torch.Tensor, raw: bool = False) -> list[float]:
        sets = self.raw if raw else self.projected
        return [energy_distance(torch.cat(s), held) for s in sets]


def x0_moves(run: Run) -> tuple[list[float], Callable[[Step], None]]:
    """RMS per real variable of x0_hat_k − x0_hat_{k−1}, mean over the batch, for each step k ≥ 1."""
    moves: list[float] = []
    previous: dict[str, torch.Tensor] = {}

    def record(step: Step) -> None:
        flat = run.layout.flatten(step.x0_hat.double().cpu())
        if "x0" in previous:
            moves.append(float((flat - previous["x0"]).pow(2).mean(dim=1).sqrt().mean()))
        previous["x0"] = flat

    return moves, record


def measure_quality(engine: Engine, situations: int, steps: dict[str, list[int]]) -> tuple[list[Quality], torch.Tensor]:
    results = [Quality(s, k) for s, ks in steps.items() for k in ks]
    held = []
    for k in range(situations):
        cast, situation, x = held_out_scene(k)
        C, T = len(situation.cast), situation.beats
        held.append(transitions(x, C, T))
        base = engine.prepare(situation, cast=cast, n=REPLICATES, seed=k)
        for q in results:
            run = with_sampler(engine, base, q.sampler, q.steps)
            moves, record = x0_moves(run)
            began = time.perf_counter()
            last = drain(engine.denoise(run), record if q.steps == DEFAULT_STEPS else None)
            q.seconds += time.perf_counter() - began
            q.scenes += REPLICATES
            q.moves.append(moves)
            raw_last = drain(engine.denoise(with_sampler(engine, base, q.sampler, q.steps, project=False)))
            for out, flags, step in ((q.projected, q.violating, last), (q.raw, q.violating_raw, raw_last)):
                flat = run.layout.flatten(step.projected.double().cpu())
                flags.extend((run.polytope.violation(flat) > VIOLATION).tolist())
                for r in range(REPLICATES):
                    out[r].append(transitions(step.projected[r].cpu(), C, T))
    return results, torch.cat(held)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def report_quality(results: list[Quality], held: torch.Tensor, situations: int) -> None:
    print(f"\n### Quality against NFE ({situations} held-out situations × {REPLICATES} replicates)\n")
    print("| sampler | steps | NFE | ms/scene | energy distance (projected) | unprojected "
          "| breaking a constraint: projected | unprojected |")
    print("|---|---|---|---|---|---|---|---|")
    stats = {}
    for q in sorted(results, key=lambda q: (q.sampler, q.steps)):
        m, s = _mean_sd(q.distances(held))
        mr, sr = _mean_sd(q.distances(held, raw=True))
        stats[q.sampler, q.steps] = (m, s, q)
        print(f"| {q.sampler} | {q.steps} | {q.nfe} | {1e3 * q.seconds / q.scenes:.1f} | {m:.4f} ± {s:.4f} "
              f"| {mr:.4f} ± {sr:.4f} | {statistics.fmean(q.violating):.0%} | {statistics.fmean(q.violating_raw):.0%} |")

    print(f"\n### How far x0_hat moves on the last steps ({DEFAULT_STEPS} steps; RMS per variable)\n")
    tail = 5
    print("| sampler | largest (step) | " + " | ".join(f"step {DEFAULT_STEPS - tail + i + 1}" for i in range(tail))
          + " | last / largest |")
    print("|---|---|" + "---|" * tail + "---|")
    for q in results:
        if q.steps == DEFAULT_STEPS:
            per_step = np.mean(np.array(q.moves), axis=0)  # per_step[i]: the move into step i + 2
            peak = int(per_step.argmax())
            print(f"| {q.sampler} | {per_step[peak]:.4f} ({peak + 2}) | "
                  + " | ".join(f"{v:.4f}" for v in per_step[-tail:]) + f" | {per_step[-1] / per_step[peak]:.2f} |")

    ddim_steps = max(k for (s, k) in stats if s == "ddim")
    for key in dict.fromkeys([(DEFAULT_SAMPLER, DEFAULT_STEPS), ("ddim", ddim_steps)]):
        if key in stats:
            cheapest_within(key, stats)


def cheapest_within(key: tuple[str, int], stats: dict[tuple[str, int], tuple[float, float, Quality]]) -> None:
    """The cheapest configuration (fewest NFE, then fastest) whose mean is within the reference's spread."""
    m, s, _ = stats[key]
    within = [q for (mq, _, q) in stats.values() if mq <= m + s]
    q = min(within, key=lambda q: (q.nfe, q.seconds / q.scenes))
    mq, sq, _ = stats[q.sampler, q.steps]
    print(f"\nCheapest within the spread of {key[0]} {key[1]} steps ({m:.4f} ± {s:.4f}): "
          f"**{q.sampler} {q.steps} steps** ({q.nfe} NFE, {1e3 * q.seconds / q.scenes:.1f} ms/scene, "
          f"{mq:.4f} ± {sq:.4f})")


def sized_situation(characters: int, beats: int):
    """A simulated cast of exactly `characters` and a situation of exactly `beats` (no pins)."""
    config = dataclasses.replace(DEFAULT_CONFIG, cast_weights=(0.0,) * (characters - 2) + (1.0,),
                                 large_cast_p=0.0, max_characters=max(characters, DEFAULT_CONFIG.max_characters),
                                 min_beats=beats, max_beats=beats, pin_p=0.0)
    rng = np.random.default_rng([SIZE_SEED, characters, beats])
    cast = random_cast(rng, config)
    return cast, random_situation(rng, cast.ids(), config)


def report_sizes(engine: Engine, mode: str) -> None:
    casts, lengths, batch = SIZES[mode]
    print(f"\n### Cost against scene size ({DEFAULT_SAMPLER}, {DEFAULT_STEPS} steps, batch {batch})\n")
    print("| characters | beats | ms/scene | µs per character-beat | network ms | projection ms | rest ms |")
    print("|---|---|---|---|---|---|---|")
    shapes = [(c, 16) for c in casts] + [(4, t) for t in lengths if t != 16]
    for characters, beats in shapes:
        cast, situation = sized_situation(characters, beats)
        run = engine.prepare(situation, cast=cast, n=batch, seed=0)
        t = split(engine, run, repeats=1)
        print(f"| {characters} | {beats} | {1e3 * t['total']:.1f} | {1e6 * t['total'] / (characters * beats):.0f} "
              f"| {1e3 * t['network']:.1f} | {1e3 * t['projection']:.1f} | {1e3 * t['rest']:.1f} |")


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer situations, steps and sizes: about a minute")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--situations", type=int, default=None, help="held-out situations (default 24, quick 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: steadier on a shared machine)")
    parser.add_argument("--only", choices=("split", "quality", "sizes"), action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mode = "quick" if args.quick else "full"
    parts = set(args.only or ("split", "quality", "sizes"))
    engine = Engine.load(args.checkpoint, args.device) if args.checkpoint else Engine.default(args.device)
    situations = args.situations or (3 if args.quick else 24)
    began = time.perf_counter()
    print(f"## Sampling ({mode}) · {machine(engine.device)} · checkpoint {engine.checkpoint} "
          f"· default {DEFAULT_SAMPLER} {DEFAULT_STEPS} steps")
    if args.quick:
        print("\n(quick: a smoke run; with 3 situations the quality figures are too noisy to choose by)")
    if "split" in parts:
        report_split(engine, [1, 64] if not args.quick else [1, 16], repeats=2 if args.quick else 3)
    if "quality" in parts:
        results, held = measure_quality(engine, situations, STEPS[mode])
        report_quality(results, held, situations)
    if "sizes" in parts:
        report_sizes(engine, mode)
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
