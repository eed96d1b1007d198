"""Batched Euclidean projection onto a scene's constraint set (DESIGN §4, §6).

Each sampler step projects its clean-scene estimate onto `C = {y : lower ≤ A·y ≤ upper}`
(Projected Diffusion Models, Christopher et al. 2024), so the projection runs every
step for the whole batch and must be both fast and exact: `project` returns the
nearest point of `C` to each row of `x`, with every row met to `tol` (max violation
scaled by row norm, checked in float64), and reports how far each sample moved and
which named rows hold it there. Pass the previous call's info back as `warm_start`
and the solver starts from the previous multipliers. The method is a semismooth-Newton
augmented Lagrangian; see `storydiff.projection_alm` for why.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .polytope import Polytope
from .projection_alm import AlmChunk, ChunkResult, Settings
from .projection_rows import ScaledRows, scaled_rows

# Samples solved together on CPU: as many as keep a `[rows, samples]` float32 work vector near
# 4 MB (2**20 entries), so the conjugate-gradient vectors stay in cache (32 to 1024 samples).
CPU_CHUNK_ENTRIES = 2**20
# On GPUs memory bandwidth, not cache, is the limit: solve up to this many samples at once.
GPU_CHUNK = 8192
# A batch is split over CPU threads only into chunks whose work vectors hold at least this many entries:
# below it the operations take microseconds and the threads would only queue for the interpreter lock.
MIN_THREAD_ENTRIES = 2**17
# The solver works to this share of tol: room for rounding a float32 result, and a margin that keeps
# the answer within 1e-5 of the true projection even where binding rows are nearly dependent.
TARGET_SHARE = 0.1


@dataclass
class ProjectionState:
    """Where a call ended, so the next call can start there (internal layout, `[columns|rows, batch]`)."""

    y: torch.Tensor      # [n, batch] float64
    dual: torch.Tensor   # [kept rows, batch] float64 multipliers of the unit-norm rows
    rho: torch.Tensor    # [batch] penalty each sample ended with
    shape: tuple[int, int, int]  # (rows, columns, kept rows) of the polytope it belongs to


@dataclass
class ProjectionInfo:
    """Per-sample diagnostics of one `project` call; tensors live on x's device."""

    distance: torch.Tensor        # [batch] ‖y − x‖, float64
    max_violation: torch.Tensor   # [batch] of the returned y, scaled by row norm, float64
    iterations: torch.Tensor      # [batch] Newton steps
    linear_iterations: torch.Tensor  # [batch] conjugate-gradient steps inside them
    converged: torch.Tensor       # [batch] False only for an empty polytope or the step limit
    binding_mask: torch.Tensor    # [batch, rows] True where a row holds within tol of a bound
    names: list[str]
    state: ProjectionState
    rows: ScaledRows = field(repr=False)

    def multipliers(self) -> torch.Tensor:
        """`[batch, rows]` float64 μ with x − y = Aᵀ μ: positive at an upper bound, negative at a lower.

        The size of μᵢ is how hard row i pushes the sample, the explanation the TUI shows.
        """
        rows = self.rows
        out = torch.zeros(self.binding_mask.shape, dtype=torch.float64, device=self.binding_mask.device)
        out[:, rows.kept] = (self.state.dual / rows.norms.unsqueeze(1)).T
        return out

    def binding_rows(self, sample: int) -> list[str]:
        """Names of the rows that bind for one sample."""
        return [self.names[i] for i in torch.nonzero(self.binding_mask[sample]).flatten().tolist()]

    @property
    def binding(self) -> list[str]:
        """Names of the rows that bind for at least one sample of the batch."""
        return [self.names[i] for i in torch.nonzero(self.binding_mask.any(dim=0)).flatten().tolist()]


def _check_input(x: torch.Tensor, polytope: Polytope) -> None:
    if x.dim() != 2 or x.shape[1] != len(polytope.columns):
        raise ValueError(f"x must be [batch, {len(polytope.columns)}] for this polytope, "
                         f"got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x holds NaN or inf; the denoiser output needs checking before projection")


def _start(rows: ScaledRows, X: torch.Tensor, warm_start: ProjectionInfo | ProjectionState | None,
           settings: Settings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Initial (y, multipliers, ρ): the previous call's if it fits this polytope and batch, else (x, 0, ρ₀).

    A state that does not fit (a pin was added, the batch changed) is not an error:
    the answer is the same from any start, only slower.
    """
    state = warm_start.state if isinstance(warm_start, ProjectionInfo) else warm_start
    batch = X.shape[1]
    if state is None or state.shape != (rows.n_rows, rows.n_columns, rows.m) or state.y.shape[1] != batch:
        mu = torch.zeros(rows.m, batch, dtype=torch.float64, device=X.device)
        return X.clone(), mu, torch.full((batch,), settings.rho_start, dtype=torch.float64, device=X.device)
    # The previous penalty is tuned to the previous point; a fresh input needs a milder one first.
    rho = (state.rho.to(X.device) / settings.warm_divisor).clamp_min(settings.rho_start)
    return state.y.to(X.device).clone(), state.dual.to(X.device).clone(), rho


def _row_report(rows: ScaledRows, Y: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled max violation per sample and the `[batch, rows]` mask of rows within tol of a bound."""
    batch = Y.shape[1]
    mask = torch.zeros(batch, rows.n_rows, dtype=torch.bool, device=Y.device)
    if rows.m == 0:
        return torch.zeros(batch, dtype=torch.float64, device=Y.device), mask
    AY = torch.empty(rows.m, batch, dtype=torch.float64, device=Y.device)
    torch.addmm(AY, rows.A64, Y, beta=0, out=AY)
    violation = (torch.clamp(rows.lower - AY, min=0) + torch.clamp(AY - rows.upper, min=0)).amax(dim=0)
    near = ((AY - rows.lower).abs() <= tol) | ((AY - rows.upper).abs() <= tol)
    mask[:, rows.kept] = near.T
    return violation, mask


def _chunks(batch: int, device: torch.device, rows: ScaledRows, workers: int) -> list[slice]:
    """Equal slices of the batch: cache-sized on CPU (and at least one per worker), GPU_CHUNK on GPUs."""
    if device.type != "cpu":
        return [slice(start, start + GPU_CHUNK) for start in range(0, batch, GPU_CHUNK)]
    length = max(rows.m, rows.n_columns)
    cap = max(32, min(1024, CPU_CHUNK_ENTRIES // length))
    count = max(-(-batch // cap), min(workers, batch * length // MIN_THREAD_ENTRIES))
    size = -(-batch // count)
    return [slice(start, start + size) for start in range(0, batch, size)]


@contextmanager
def _one_thread_per_chunk() -> Iterator[int]:
    """Run each chunk on one thread, chunks side by side; yields how many may run at once.

    The solver makes thousands of small tensor operations per second. Spread over
    torch's intra-op threads, each ends in a barrier, and on a busy machine one
    descheduled thread makes every barrier wait a scheduler slice: 2 threads on 2
    shared cores ran 3-7x slower than 1. Whole chunks per thread need no barriers.
    The setting is process-wide (new threads take it up), so it is restored on the way out.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def _solve(rows: ScaledRows, X: torch.Tensor, y: torch.Tensor, mu: torch.Tensor, rho: torch.Tensor,
           target: float, settings: Settings) -> dict[str, torch.Tensor]:
    """Run the solver chunk by chunk and stitch the per-sample results together."""

    def solve(cols: slice) -> ChunkResult:
        return AlmChunk(rows, X[:, cols], y[:, cols], mu[:, cols], rho[cols], target, settings).run()

    if X.device.type != "cpu":
        parts = [solve(cols) for cols in _chunks(X.shape[1], X.device, rows, 1)]
    else:
        with _one_thread_per_chunk() as workers:
            chunks = _chunks(X.shape[1], X.device, rows, workers)
            if workers == 1 or len(chunks) == 1:
                parts = [solve(cols) for cols in chunks]
            else:
                with ThreadPoolExecutor(min(workers, len(chunks))) as pool:
                    parts = list(pool.map(solve, chunks))
    return {name: torch.cat([getattr(p, name) for p in parts], dim=-1)
            for name in ("y", "dual", "rho", "newton", "cg", "converged")}


def project(x: torch.Tensor, polytope: Polytope, warm_start: ProjectionInfo | ProjectionState | None = None,
            tol: float = 1e-6, settings: Settings | None = None) -> tuple[torch.Tensor, ProjectionInfo]:
    """Project each row of `x` `[batch, columns]` onto the polytope; returns `(y, info)`.

    `y` has x's dtype and device. The solver works to tol/10 in float64, so that rounding
    a float32 result keeps every row of a unit-scale scene within `tol`;
    `info.max_violation` is measured on the returned `y`. Raises ValueError if a row
    can be seen to be unsatisfiable on its own; a polytope that is empty only through
    several rows together comes back with `info.converged` False.
    """
    _check_input(x, polytope)
    settings = settings or Settings()
    rows = scaled_rows(polytope, x.device)
    X = x.detach().to(torch.float64).T.contiguous()
    y0, mu0, rho0 = _start(rows, X, warm_start, settings)
    if rows.m and X.shape[1]:
        out = _solve(rows, X, y0, mu0, rho0, tol * TARGET_SHARE, settings)
    else:
        none = torch.zeros(X.shape[1], dtype=torch.long, device=x.device)
        out = {"y": X.clone(), "dual": mu0, "rho": rho0, "newton": none, "cg": none,
               "converged": torch.ones(X.shape[1], dtype=torch.bool, device=x.device)}
    y = out["y"].T.contiguous().to(x.dtype)
    Y = y.to(torch.float64).T
    violation, mask = _row_report(rows, Y, tol)
    info = ProjectionInfo(
        distance=torch.linalg.vector_norm(Y - X, dim=0), max_violation=violation, iterations=out["newton"],
        linear_iterations=out["cg"], converged=out["converged"], binding_mask=mask, names=polytope.names,
        state=ProjectionState(y=out["y"], dual=out["dual"], rho=out["rho"],
                              shape=(rows.n_rows, rows.n_columns, rows.m)),
        rows=rows,
    )
    return y, info
