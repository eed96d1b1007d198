"""Batched projection (`storydiff.project`) against OSQP one point at a time, at equal accuracy (DESIGN §10).

Usage: python benchmarks/projection.py [--device cuda] [--quick]

Scenes: the bundled situations (compiled with the real loader and compiler) and a
synthetic 8-character × 24-beat scene with the same row structure. Inputs are a
feasible scene plus Gaussian noise of 15% of each variable's range (cold), then
Gaussian steps of 0.006 per variable between calls (warm): how far the default sampler's
x0_hat moves in its last steps (RESULTS.md, Sampling). The reference optimum is
OSQP at eps 1e-9 with polishing. OSQP runs at the loosest eps in {1e-3 … 1e-9} that
meets max violation ≤ 1e-6 (scaled by row norm) and distance ≤ 1e-5 on the points
checked; its setup (factorisation) is timed once per scene and amortised over the
batch, then `update(q=…)` + `solve()` per point. Cold: OSQP without warm starting,
ours from the input. Warm: both start from their previous solution, over four steps (one with
--quick), their mean timed: a single warm call on a shared 2-vCPU machine varies by ±15%. Ratios are
OSQP time per projection / ours; the targets are printed beside them.
"""
from __future__ import annotations

import argparse
import glob
import platform
import statistics
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osqp
import scipy.sparse as sp
import torch

from storydiff.polytope import Polytope
from storydiff.projection import project
from storydiff.projection_rows import build_scaled_rows
from storydiff.projection_synthetic import synthetic_scene

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
EPS_LADDER = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]
MAX_VIOLATION, MAX_DISTANCE = 1e-6, 1e-5
# RMS move of x0_hat per variable over the last three steps of heun 12 with the EDM prior
# b81a3b7c6c0415d1 (0.0078, 0.0058, 0.0024; benchmarks/sampling.py): their middle value.
WARM_STEP = 0.006
TARGETS = {("cpu", "cold"): 5.0, ("cpu", "warm"): 20.0, ("cuda", "cold"): 500.0}


@dataclass
class Scene:
    name: str
    polytope: Polytope
    feasible: torch.Tensor  # [n] float64
    spread: torch.Tensor    # [n] each variable's natural range (1 for felt/shown, 2 for mood/stance)


def _spread(columns: list[str]) -> torch.Tensor:
    spread = [1.0 if (".felt." in c or ".shown." in c) else 2.0 for c in columns]
    return torch.tensor(spread, dtype=torch.float64)


def bundled_scenes(quick: bool) -> list[Scene]:
    """The example situations, through the real loader and constraint compiler (if present)."""
    try:
        from storydiff.constraints import compile_constraints
        from storydiff.loader import load_characters, load_situation
    except ImportError:
        return []
    cast = load_characters(ROOT / "characters")
    files = sorted(glob.glob(str(ROOT / "characters" / "situations" / "*.situation.xml")))
    scenes = []
    for path in files[:2] if quick else files:
        polytope = compile_constraints(cast, load_situation(path, cast))
        n = polytope.shape[1]
        start = torch.rand(1, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        feasible, _ = project(start, polytope)
        scenes.append(Scene(Path(path).name.split(".")[0], polytope, feasible[0], _spread(polytope.columns)))
    return scenes


def synthetic(characters: int, beats: int) -> Scene:
    polytope, feasible = synthetic_scene(characters, beats, seed=0)
    return Scene(f"synthetic {characters}x{beats}", polytope, feasible, _spread(polytope.columns))


def inputs(scene: Scene, batch: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Cold inputs (feasible + 15% noise), then `steps` warm inputs (Gaussian steps of WARM_STEP each)."""
    g = torch.Generator().manual_seed(seed)

    def noise(scale: torch.Tensor | float) -> torch.Tensor:
        return scale * torch.randn(batch, len(scene.spread), generator=g, dtype=torch.float64)

    xs = [scene.feasible + noise(0.15 * scene.spread)]
    for _ in range(steps):
        xs.append(xs[-1] + noise(WARM_STEP))
    return xs


# -- OSQP ------------------------------------------------------------------------------------
def osqp_matrix(polytope: Polytope) -> sp.csc_matrix:
    coo = polytope.A.to_sparse_coo().coalesce()
    return sp.csc_matrix((coo.values().numpy(), coo.indices().numpy()), shape=polytope.shape)


def osqp_solver(polytope: Polytope, A: sp.csc_matrix, q: np.ndarray, eps: float, warm: bool) -> osqp.OSQP:
    solver = osqp.OSQP()
    solver.setup(sp.identity(A.shape[1], format="csc"), q, A, polytope.lower.numpy(), polytope.upper.numpy(),
                 verbose=False, eps_abs=eps, eps_rel=eps, polishing=True, warm_starting=warm,
                 max_iter=1_000_000)
    return solver


def reference(polytope: Polytope, A: sp.csc_matrix, xs: list[np.ndarray]) -> list[np.ndarray]:
    solver = osqp_solver(polytope, A, -xs[0][0], 1e-9, warm=False)
    out = []
    for X in xs:
        rows = []
        for x in X:
            solver.update(q=-x)
            rows.append(solver.solve().x)
        out.append(np.array(rows))
    return out


def osqp_run(polytope: Polytope, A: sp.csc_matrix, xs: list[np.ndarray], refs: list[np.ndarray], eps: float,
             warm: bool) -> float | None:
    """Seconds per point (update + solve), or None if any point misses the accuracy bar.

    Cold times every input set; warm times the steps after the first, each point
    warm-started from its own previous primal and dual solution.
    """
    solver = osqp_solver(polytope, A, -xs[0][0], eps, warm)
    previous: list[tuple[np.ndarray, np.ndarray]] = []
    times = []
    for k, (X, R) in enumerate(zip(xs, refs, strict=True)):
        for i, x in enumerate(X):
            start = time.perf_counter()
            solver.update(q=-x)
            if warm and k:
                solver.warm_start(x=previous[i][0], y=previous[i][1])
            result = solver.solve()
            if not warm or k:
                times.append(time.perf_counter() - start)
            if result.x is None or not np.all(np.isfinite(result.x)):
                return None
            violation = float(polytope.violation(torch.from_numpy(result.x).unsqueeze(0)))
            if violation > MAX_VIOLATION or np.linalg.norm(result.x - R[i]) > MAX_DISTANCE:
                return None
            if warm:
                if k == 0:
                    previous.append((result.x, result.y))
                else:
                    previous[i] = (result.x, result.y)
    return statistics.mean(times)


def osqp_best(polytope: Polytope, A: sp.csc_matrix, xs, refs, warm: bool) -> tuple[float, float]:
    """(eps, seconds per point) at the loosest eps that meets the accuracy bar."""
    for eps in EPS_LADDER:
        seconds = osqp_run(polytope, A, xs, refs, eps, warm)
        if seconds is not None:
            return eps, seconds
    return float("nan"), float("nan")


def osqp_setup_seconds(polytope: Polytope, A: sp.csc_matrix) -> float:
    start = time.perf_counter()
    osqp_solver(polytope, A, np.zeros(A.shape[1]), 1e-6, warm=False)
    return time.perf_counter() - start


# -- ours ------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def ours_setup_seconds(polytope: Polytope, device: str) -> float:
    start = time.perf_counter()
    build_scaled_rows(polytope, torch.device(device))
    _sync(device)
    return time.perf_counter() - start


def ours_run(polytope: Polytope, xs: list[torch.Tensor], device: str) -> dict:
    """Cold call on xs[0], then warm calls on xs[1:], each from the previous call's info."""
    timed, results = [], []
    info = None
    for k, X in enumerate(xs):
        X = X.to(device)
        _sync(device)
        start = time.perf_counter()
        y, info = project(X, polytope, warm_start=info if k else None)
        _sync(device)
        timed.append(time.perf_counter() - start)
        results.append((y.cpu(), info))
    return {"cold": timed[0], "warm": statistics.mean(timed[1:]) if len(timed) > 1 else float("nan"),
            "results": results}


# -- report ----------------------------------------------------------------------------------
@dataclass
class Row:
    scene: str
    batch: int
    mode: str
    ours_ms: float
    violation: float
    distance: float
    osqp_eps: float
    osqp_ms: float
    target: float | None

    @property
    def ratio(self) -> float:
        return self.osqp_ms / self.ours_ms


def measure(scene: Scene, batch: int, device: str, checked: int, steps: int) -> list[Row]:
    xs = inputs(scene, batch, steps, seed=batch)
    ours = ours_run(scene.polytope, xs, device)
    setup = ours_setup_seconds(scene.polytope, device)
    A = osqp_matrix(scene.polytope)
    sub = [X[:checked].numpy() for X in xs]
    refs = reference(scene.polytope, A, sub)
    osqp_setup = osqp_setup_seconds(scene.polytope, A)
    rows = []
    for mode in ("cold", "warm"):
        k = slice(0, 1) if mode == "cold" else slice(1, None)
        seen = slice(0, 1) if mode == "cold" else slice(None)  # warm OSQP also solves the first set
        eps, per_point = osqp_best(scene.polytope, A, sub[seen], refs[seen], warm=mode == "warm")
        results = ours["results"][k]
        violation = max(float(info.max_violation.max()) for _, info in results)
        distance = max(float(np.linalg.norm(y[:checked].numpy() - R, axis=1).max())
                       for (y, _), R in zip(results, refs[k], strict=True))
        target = TARGETS.get((device, mode)) if scene.name.startswith("synthetic") and batch >= 1024 else None
        rows.append(Row(scene.name, batch, mode, 1e3 * (ours[mode] + setup) / batch, violation, distance, eps,
                        1e3 * (per_point + osqp_setup / batch), target))
    return rows


def print_rows(rows: list[Row]) -> None:
    print("| scene | batch | start | ours ms/proj | max violation | max dist to ref | OSQP eps "
          "| OSQP ms/proj | OSQP/ours | target |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        target = f"≥ {r.target:g}× ({'met' if r.ratio >= r.target else 'missed'})" if r.target else ""
        print(f"| {r.scene} | {r.batch} | {r.mode} | {r.ours_ms:.3f} | {r.violation:.1e} | {r.distance:.1e} "
              f"| {r.osqp_eps:.0e} | {r.osqp_ms:.2f} | {r.ratio:.1f}× | {target} |", flush=True)


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], check=False, capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                     if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return (f"{model}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"osqp {osqp.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true",
                        help="fewer scenes and batches; under a minute on 2 cores")
    parser.add_argument("--synthetic-only", action="store_true",
                        help="only the synthetic 8 × 24 scene, where the targets are set")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch")
    batches = [1, 64] if args.quick else [1, 64, 1024] + ([8192] if args.device == "cuda" else [])
    checked, steps = (4, 1) if args.quick else (16, 4)
    print(f"# projection benchmark ({'quick' if args.quick else 'full'}), device {args.device}")
    gpu = f"; GPU {torch.cuda.get_device_name()}" if args.device == "cuda" else ""
    print(f"machine: {machine()}{gpu}")
    print(f"accuracy bar: max violation ≤ {MAX_VIOLATION:g} (scaled), distance to OSQP eps-1e-9 reference ≤ "
          f"{MAX_DISTANCE:g} on the first {checked} points of each batch\n")
    scenes = ([] if args.synthetic_only else bundled_scenes(args.quick)) + [synthetic(8, 24)]
    rows = []
    for scene in scenes:
        m, n = scene.polytope.shape
        nonzeros = scene.polytope.A.values().numel()
        print(f"{scene.name}: {n} variables, {m} rows, {nonzeros} nonzeros", flush=True)
        for batch in batches:
            rows += measure(scene, batch, args.device, min(checked, batch), steps)
    print()
    print_rows(rows)


if __name__ == "__main__":
    main()
