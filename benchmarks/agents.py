"""Online agents for games: next_beat() latency, pool throughput, and what it costs (DESIGN §10).

Scene: the bundled three-hander `mending-nets` (mara, ilan, leonor; 9 scripted beats), a window
of 16 beats, played on into open-ended beats; latency is measured once the window is full.

    python benchmarks/agents.py [--device cpu|cuda] [--threads N] [--beats 100] [--quality 24]

Sections:
- quality: energy distance between the beat-to-beat transitions (a character's felt | shown |
  mood at beat b and b+1) of agents run with a cheap sampler and with the default sampler
  (Heun, 12 steps, projecting every step), against the default's own spread (two seed sets);
- latency of one scene's next_beat(): median and p95, scripted beats and open-ended beats,
  split into network and projection time;
- a pool of B scenes: time per beat, scenes per second, how many fit a 90 Hz frame (11.1 ms);
- host-side overhead: the time per beat outside the network and the projection, per scene, at two
  pool sizes, and the pool that would fit a 5 ms beat if network and projection kept their measured
  cost per scene (or cost nothing, the bound the host alone sets);
- growth with cast size (bundled situations of 2-7 characters) and with the window (history seen).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

import storydiff
from storydiff import projection
from storydiff.loader import bundled_library, load_characters, load_situation
from storydiff.metrics import energy_distance
from storydiff.sampling import network_evaluations

FRAME_MS = 1000 / 90
HELD_OUT_SEED = 987_654  # as benchmarks/heldout.py: seeds no training corpus used
TARGET_MS = 20.0
SITUATIONS = {2: "storm", 3: "mending-nets", 5: "the-wake", 6: "blessing-of-the-fleet", 7: "harbour-inquiry"}


@dataclass
class Samples:
    """Seconds per call, by where they went."""

    total: list[float] = field(default_factory=list)
    network: list[float] = field(default_factory=list)
    projection: list[float] = field(default_factory=list)
    scenes: list[float] = field(default_factory=list)


class Timer:
    """Wall time spent in the network (forward hooks), in projection (a wrapper), and in each scene's own
    host work (`Agent._plan`, `Agent._commit`: its template, its noise, recording its beat), per beat."""

    def __init__(self, engine: storydiff.Engine):
        self.device = engine.device
        self.network = self.projection = self.scenes = 0.0
        self._t0 = 0.0
        for name in ("_plan", "_commit"):
            self._time_scenes(name)
        engine.model.register_forward_pre_hook(lambda *_: self._start())
        engine.model.register_forward_hook(lambda *_: self._stop("network"))
        inner = projection.project

        def timed(*args, **kwargs):
            self._start()
            out = inner(*args, **kwargs)
            self._stop("projection")
            return out

        projection.project = timed

    def _time_scenes(self, name: str) -> None:
        inner = getattr(storydiff.Agent, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = inner(*args, **kwargs)
            self.scenes += time.perf_counter() - t0
            return out

        setattr(storydiff.Agent, name, timed)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _start(self) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def _stop(self, what: str) -> None:
        self._sync()
        setattr(self, what, getattr(self, what) + time.perf_counter() - self._t0)

    def repeat(self, step: Callable[[], object], times: int) -> Samples:
        """Call `step` `times` times, recording each call's total, network, projection and scene time."""
        out = Samples()
        for _ in range(times):
            with self.measure():
                step()
            out.total.append(self.total)
            out.network.append(self.network)
            out.projection.append(self.projection)
            out.scenes.append(self.scenes)
        return out

    @contextmanager
    def measure(self):
        self.network = self.projection = self.scenes = 0.0
        self._sync()
        t0 = time.perf_counter()
        yield
        self._sync()
        self.total = time.perf_counter() - t0


def cpu_name() -> str:
    """The CPU model and core count, as /proc/cpuinfo gives them (else what platform knows)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        return f"{model}, {sum(line.startswith('processor') for line in lines)} cores"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def situation(name: str):
    library = bundled_library()
    return load_situation(library / "situations" / f"{name}.situation.xml", load_characters(library))


def transitions(agent: storydiff.Agent) -> torch.Tensor:
    """`[characters × (beats − 1), 94]`: felt | shown | mood at beat b next to beat b+1."""
    x = agent._values[:, :, :47]
    return torch.cat([x[:, :-1], x[:, 1:]], dim=-1).reshape(-1, 94)


def simulated(scene, beats: int, n: int) -> torch.Tensor:
    """Transitions of the simulator's trajectories for `scene` played to `beats` beats (n draws)."""
    import numpy as np

    from storydiff.simulator import simulate

    long = scene.model_copy(update={"beats": beats})
    xs = [simulate(scene.library, long, np.random.default_rng([HELD_OUT_SEED, k])).float() for k in range(n)]
    return torch.cat([torch.cat([x[:, :-1, :47], x[:, 1:, :47]], dim=-1).reshape(-1, 94) for x in xs])


# (sampler, steps, start σ (None: from pure noise, σ = 10), projection): the default first.
CANDIDATES = (("heun", 12, None, "every"), ("euler", 4, None, "final"), ("euler", 8, None, "final"),
              ("euler", 4, 0.2, "final"), ("euler", 8, 0.2, "final"), ("pyuan", 3, 0.2, "final"),
              ("pyuan", 4, 0.2, "final"))


def quality(engine, n: int, beats: int, replicates: int = 3) -> None:
    """Energy distance to the simulator's trajectories of the same scene, per sampler: mean ± sd over
    `replicates` sets of `n` agents (the sampling benchmark's measure and its notion of spread)."""
    scene = situation("mending-nets")
    reference = simulated(scene, beats, 8 * n)

    def run(seed0: int, sampler: str, steps: int, start: float | None, project: str) -> tuple[float, float]:
        agents = [engine.agent(scene, seed=seed0 + k, sampler=sampler, steps=steps, start_sigma=start,
                               project=project) for k in range(n)]
        pool = engine.pool(agents)
        t0 = time.perf_counter()
        for _ in range(beats):
            pool.next_beat()
        x = torch.cat([transitions(a) for a in agents])
        return energy_distance(x, reference), (time.perf_counter() - t0) / beats / n

    print(f"\nquality: energy distance of beat-to-beat transitions to {8 * n} simulated trajectories of "
          f"{scene.id} ({beats} beats); {replicates} sets of {n} agents per sampler (pooled)")
    print(f"  {'sampler':34s} {'NFE':>4s} {'distance':>16s} {'ms/scene-beat':>14s}")
    rows = []
    for sampler, steps, start, project in CANDIDATES:
        runs = [run(1000 * r, sampler, steps, start, project) for r in range(replicates)]
        d = [r[0] for r in runs]
        mean, sd = statistics.mean(d), statistics.stdev(d)
        nfe = network_evaluations(sampler, steps)
        label = f"{sampler} {steps}, from σ {start or 10:g}, project {project}"
        rows.append((label, nfe, mean, sd))
        ms = 1000 * statistics.mean(r[1] for r in runs)
        print(f"  {label:34s} {nfe:4d} {mean:8.4f} ± {sd:.4f} {ms:12.1f}")
    _, _, m0, s0 = rows[0]
    within = [r for r in rows[1:] if r[2] <= m0 + s0]
    if within:
        best = min(within, key=lambda r: (r[1], r[2]))
        print(f"  fewest evaluations within the default's spread ({m0:.4f} + {s0:.4f}): {best[0]}")
    else:
        print(f"  none of the cheap samplers is within the default's spread ({m0:.4f} + {s0:.4f})")


def latency(engine, timer: Timer, beats: int, name: str = "mending-nets", window: int = 16,
            warm: int | None = None) -> dict[str, float]:
    """ms per next_beat() for one scene, after `warm` beats (default: until the window is full)."""
    agent = engine.agent(situation(name), seed=0, window=window)
    scripted = []
    for _ in range(warm if warm is not None else max(window, agent.situation.beats) + 1):
        t0 = time.perf_counter()
        agent.next_beat()
        scripted.append(time.perf_counter() - t0)
    timed = timer.repeat(agent.next_beat, beats)
    ms = sorted(1000 * t for t in timed.total)
    return {"median": statistics.median(ms), "p95": ms[int(0.95 * (len(ms) - 1))],
            "network": 1000 * statistics.median(timed.network),
            "projection": 1000 * statistics.median(timed.projection),
            "scripted": 1000 * statistics.median(scripted[: agent.situation.beats])}


def throughput(engine, timer: Timer, sizes: list[int], beats: int) -> None:
    scene = situation("mending-nets")
    print(f"\npool of B scenes ({scene.id}, window 16, open-ended beats): one beat for all")
    print(f"  {'B':>5s} {'ms/beat':>9s} {'scenes/s':>9s} {'network':>9s} {'projection':>11s}")
    fits = 0
    for size in sizes:
        pool = engine.pool([engine.agent(scene, seed=k) for k in range(size)])
        for _ in range(17):
            pool.next_beat()
        timed = timer.repeat(pool.next_beat, beats)
        network, proj = timed.network, timed.projection
        t = statistics.median(timed.total)
        if 1000 * t <= FRAME_MS:
            fits = size
        print(f"  {size:5d} {1000 * t:9.2f} {size / t:9.0f} {1000 * statistics.median(network):7.2f}ms "
              f"{1000 * statistics.median(proj):9.2f}ms")
    print(f"  largest pool stepped within a 90 Hz frame ({FRAME_MS:.1f} ms): {fits or 'none'} of those tried")


def overhead(engine, timer: Timer, sizes: tuple[int, int], beats: int, warm: int) -> None:
    """Time per beat outside network and projection at two pool sizes, timed from beat `warm + 1`: all of
    it ("other"), and the part each scene spends on its own (template, noise, recording: "per scene");
    the rest is the sampler's arithmetic over the padded batch (device work on a GPU) and fixed costs.
    Reading every agent's `Beat` is timed apart, as a game that reads each beat pays it: a pool builds
    them on first access, in order (a behaviour depends on the one before), so every earlier beat is
    read first and one more beat played."""
    scene = situation("mending-nets")
    print(f"\nhost-side overhead per beat (all but network and projection), {scene.id}, window 16, "
          f"beats {warm + 1}-{warm + beats}")
    print(f"  {'B':>5s} {'ms/beat':>9s} {'net+proj':>9s} {'other':>9s} {'other/scene':>12s} "
          f"{'per scene':>10s} {'read Beats':>11s}")
    rows = []
    for size in sizes:
        pool = engine.pool([engine.agent(scene, seed=k) for k in range(size)])
        for _ in range(warm):
            pool.next_beat()
        timed = timer.repeat(pool.next_beat, beats)
        total, own = timed.total, timed.scenes
        other = [t - n - p for t, n, p in zip(total, timed.network, timed.projection, strict=True)]
        for agent in pool:
            agent.history  # noqa: B018 -- builds every beat played so far
        last = pool.next_beat()
        t0 = time.perf_counter()
        list(last)
        read = (time.perf_counter() - t0) / size
        t, o, s = statistics.median(total), statistics.median(other), statistics.median(own)
        rows.append((size, t, o, s))
        print(f"  {size:5d} {1000 * t:9.2f} {1000 * (t - o):7.2f}ms {1000 * o:7.2f}ms {1e6 * o / size:9.1f} µs "
              f"{1e6 * s / size:7.1f} µs {1e6 * read:8.1f} µs")
    (b0, _, o0, _), (b1, t1, o1, s1) = rows
    slope = max((o1 - o0) / (b1 - b0), 1e-9)
    fixed = max(o0 - slope * b0, 0.0)
    own = max(s1 / b1, 1e-9)
    work = (t1 - o1) / b1  # network + projection per scene at the larger pool, on this device
    budget = 5e-3
    print(f"  other, fitted: {1000 * fixed:.2f} ms per beat + {1e6 * slope:.1f} µs per scene "
          f"(of which {1e6 * own:.1f} µs the scene's own host work)")
    print(f"  scenes per 5 ms beat: {int(budget / own)} bounded by the scenes' own host work alone; "
          f"{max(0, int((budget - fixed) / slope))} by all of 'other' on this device; "
          f"{max(0, int((budget - fixed) / (slope + work)))} with this device's {1e6 * work:.0f} µs per scene "
          "of network and projection")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--beats", type=int, default=100, help="beats timed per measurement")
    parser.add_argument("--quality", type=int, default=0, metavar="N",
                        help="run the quality section with N scenes per set")
    parser.add_argument("--pools", default="1,4,16,64", help="pool sizes, comma-separated")
    parser.add_argument("--overhead", default="64,256", help="the two pool sizes of the host-side fit")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = storydiff.Engine.default(args.device)
    timer = Timer(engine)
    device = torch.cuda.get_device_name(engine.device) if engine.device.type == "cuda" else cpu_name()
    print(f"storydiff {storydiff.__version__} · checkpoint {engine.checkpoint} · {engine.device} ({device})"
          f" · {torch.get_num_threads()} torch threads · torch {torch.__version__}")
    from storydiff.agent import AGENT_SAMPLER, AGENT_START_SIGMA, AGENT_STEPS

    print(f"agent sampler: {AGENT_SAMPLER}, {AGENT_STEPS} steps from σ {AGENT_START_SIGMA} "
          "(the first beat from noise), projecting the final estimate")
    if args.quality:
        quality(engine, args.quality, beats=24)

    r = latency(engine, timer, args.beats)
    verdict = "meets" if r["median"] <= TARGET_MS else "misses"
    print(f"\nnext_beat(), 1 scene of 3 characters, window 16, {args.beats} open-ended beats:")
    print(f"  median {r['median']:.1f} ms, p95 {r['p95']:.1f} ms ({verdict} the {TARGET_MS:.0f} ms target); "
          f"network {r['network']:.1f} ms, projection {r['projection']:.1f} ms, "
          f"other {r['median'] - r['network'] - r['projection']:.1f} ms")
    print(f"  scripted beats 1-9 (window to the scene's end, all later beats open): "
          f"median {r['scripted']:.1f} ms")

    throughput(engine, timer, [int(s) for s in args.pools.split(",")], max(5, args.beats // 5))
    small, large = (int(s) for s in args.overhead.split(","))
    # From beat 18 the scripted beats slide through the window, so each beat's pool is a new
    # composition; from beat 26 the window is past them and every beat reuses the same one.
    for warm in (17, 30):
        overhead(engine, timer, (small, large), max(5, args.beats // 10), warm)

    print("\ngrowth with cast size (1 scene, window 16, open-ended beats)")
    print(f"  {'characters':>10s} {'median ms':>10s} {'network':>9s} {'projection':>11s}")
    for size, name in SITUATIONS.items():
        r = latency(engine, timer, max(10, args.beats // 3), name=name)
        print(f"  {size:10d} {r['median']:10.1f} {r['network']:7.1f}ms {r['projection']:9.1f}ms")

    print("\ngrowth with history seen (1 scene of 3, window = beats the network sees)")
    print(f"  {'window':>10s} {'median ms':>10s} {'network':>9s} {'projection':>11s}")
    for window in (4, 8, 16, 32, 64):
        r = latency(engine, timer, max(10, args.beats // 3), window=window)
        print(f"  {window:10d} {r['median']:10.1f} {r['network']:7.1f}ms {r['projection']:9.1f}ms")


if __name__ == "__main__":
    main()
