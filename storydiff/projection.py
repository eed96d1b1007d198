"""Batched Euclidean projection onto a scene's constraint set (DESIGN §4, §6).

Each sampler step projects its clean-scene estimate onto `C = {y : lower ≤ A·y ≤ upper}`
(Projected Diffusion Models, Christopher et al. 2024), so the projection runs every
step for the whole batch and must be both fast and exact: `project` returns the
nearest point of `C` to each row of `x`, with every row met to `tol` (max violation
scaled by row norm, checked in float64), and reports how far each sample moved and
which named rows hold it there. Pass the previous call's info back as `warm_start`
and the solver starts from the previous multipliers, finishing by an active-set method
where the rows that hold the scene have barely changed (`storydiff.projection_active`).
A cold start runs a semismooth-Newton augmented Lagrangian (see `storydiff.projection_alm`
for why) until its multipliers name the binding rows, then the same finish; the augmented
Lagrangian also takes whatever the finish leaves. Large batches are solved
part by part — the set's independent chains apart from the rest, `storydiff.projection_parts` —
and chains, warm or cold, by an active-set method whose solves are closed-form
(`storydiff.projection_chains`); what it leaves goes to the augmented Lagrangian.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TypeVar

import torch

from .polytope import Polytope
from .projection_active import active_set, worst_violation
from .projection_alm import AlmChunk, ChunkResult, Settings
from .projection_cg import (
    BufferPool,
    consecutive,
    cpu_tuned,
    put_columns,
    share_buffers,
    stop_sharing_buffers,
    take_columns,
)
from .projection_chains import project_chains
from .projection_parts import MIN_SPLIT_ENTRIES, Part, group_columns, split, whole
from .projection_rows import ScaledRows, scaled_rows

# Samples solved together on CPU: as many as keep a `[rows, samples]` float32 work vector near
# 4 MB (2**20 entries), so the conjugate-gradient vectors stay in cache (at least 32 samples).
CPU_CHUNK_ENTRIES = 2**20
# On GPUs memory bandwidth, not cache, is the limit: solve up to this many entries (columns × rows or
# variables) at once — 8,192 samples of a 16,384-row scene; a thin part (chains) takes far more columns.
GPU_CHUNK_ENTRIES = 2**27
# A batch is split over CPU threads only into chunks whose work vectors hold at least this many entries:
# below it the operations take microseconds and the threads would only queue for the interpreter lock.
MIN_THREAD_ENTRIES = 2**17
# The solver works to this share of tol: room for rounding a float32 result, and a margin that keeps
# the answer within 1e-5 of the true projection even where binding rows are nearly dependent.
TARGET_SHARE = 0.1

T = TypeVar("T")


@dataclass
class ProjectionState:
    """Where a call ended, so the next call can start there (internal layout, `[columns|rows, batch]`)."""

    y: torch.Tensor      # [n, batch] the returned y, transposed (a view: x's dtype)
    duals: list[torch.Tensor]  # per part (`projection_parts`): [part rows, part columns] float64 multipliers
    rhos: list[torch.Tensor]   # per part: [part columns] penalty each column ended with
    shape: tuple[int, int, int]  # (rows, columns, kept rows) of the polytope it belongs to


@dataclass
class ProjectionInfo:
    """Per-sample diagnostics of one `project` call; tensors live on x's device."""

    distance: torch.Tensor        # [batch] ‖y − x‖, float64
    max_violation: torch.Tensor   # [batch] of the returned y, scaled by row norm, float64
    iterations: torch.Tensor      # [batch] Newton steps and active-set solves (of the sample's slowest part)
    linear_iterations: torch.Tensor  # [batch] conjugate-gradient steps inside them
    converged: torch.Tensor       # [batch] False only for an empty polytope or the step limit
    names: list[str]
    state: ProjectionState
    rows: ScaledRows = field(repr=False)
    parts: list[Part] = field(default_factory=list, repr=False)
    tol: float = 1e-6             # what "within tol of a bound" means for `binding_mask`

    @cached_property
    def binding_mask(self) -> torch.Tensor:
        """`[batch, rows]` True where a row holds the returned y within tol of a bound.

        Built when first read, not by `project`: a sampler reads it on its last step, and on the
        synthetic 8 × 24 scene at batch 1024 it cost 0.1 s of one thread's time every warm call.
        """
        return _binding_mask(self.rows, self.state.y, self.tol)

    def multipliers(self) -> torch.Tensor:
        """`[batch, rows]` float64 μ with x − y = Aᵀ μ: positive at an upper bound, negative at a lower.

        The size of μᵢ is how hard row i pushes the sample, the explanation the TUI shows.
        """
        rows, (batch,), device = self.rows, self.distance.shape, self.distance.device
        dual = torch.zeros(rows.m, batch, dtype=torch.float64, device=device)
        for part, part_dual in zip(self.parts, self.state.duals, strict=True):
            part.multipliers(part_dual, dual)
        out = torch.zeros(batch, rows.n_rows, dtype=torch.float64, device=device)
        out[:, rows.kept] = (dual / rows.norms.unsqueeze(1)).T
        return out

    def binding_rows(self, sample: int) -> list[str]:
        """Names of the rows that bind for one sample."""
        return [self.names[i] for i in torch.nonzero(self.binding_mask[sample]).flatten().tolist()]

    @property
    def binding(self) -> list[str]:
        """Names of the rows that bind for at least one sample of the batch."""
        return [self.names[i] for i in torch.nonzero(self.binding_mask.any(dim=0)).flatten().tolist()]


def _check_input(x: torch.Tensor, polytope: Polytope, tol: float) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__} (torch.as_tensor converts arrays)")
    if not tol > 0 or not math.isfinite(tol):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if x.dim() != 2 or x.shape[1] != len(polytope.columns):
        raise ValueError(f"x must be [batch, {len(polytope.columns)}] for this polytope, "
                         f"got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    # a finite sum means every entry is finite (NaN and inf propagate); only an overflow needs the full check
    if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
        raise ValueError("x holds NaN or inf; the denoiser output needs checking before projection")


def _parts(rows: ScaledRows, batch: int) -> list[Part]:
    """The problem whole for small batches, else split into independent parts as large as the batch
    needs (`group_columns`; built once per rows and size)."""
    mode = "whole" if batch * rows.n_columns < MIN_SPLIT_ENTRIES else group_columns(batch)
    if mode not in rows.parts:
        rows.parts[mode] = [whole(rows)] if mode == "whole" else split(rows, mode)
    return rows.parts[mode]


def _start(part: Part, Xp: torch.Tensor, state: ProjectionState | None, index: int,
           settings: Settings) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """A part's initial (previous y, multipliers, ρ): where the previous call left it if that fits, else
    (None, 0, ρ₀). The previous y is the one returned (transposed to the polytope's layout, x's dtype): only
    the augmented Lagrangian reads it, for the few samples the active set leaves (`Part.take`).

    A state that does not fit (a pin was added, the batch changed) is not an error:
    the answer is the same from any start, only slower. The solvers only read what this
    returns and write into fresh answers, so the previous state is not copied.
    """
    columns = Xp.shape[1]
    fits = (state is not None and index < len(state.duals)
            and state.duals[index].shape == (part.rows.m, columns) and state.rhos[index].shape == (columns,))
    if not fits:
        mu = torch.zeros(part.rows.m, columns, dtype=torch.float64, device=Xp.device)
        return None, mu, torch.full((columns,), settings.rho_start, dtype=torch.float64, device=Xp.device)
    # The previous penalty is tuned to the previous point; a fresh input needs a milder one first.
    rho = (state.rhos[index].to(Xp.device) / settings.warm_divisor).clamp_min(settings.rho_start)
    return state.y.to(Xp.device), state.duals[index].to(Xp.device), rho


def _past_bounds(rows: ScaledRows, R: torch.Tensor, pool: BufferPool) -> tuple[torch.Tensor, torch.Tensor]:
    """`A R − lower` and `A R − upper` of the scaled rows for `[n, b]` float64 `R`, in `pool`'s buffers."""
    AY = pool("AY", rows.m, torch.float64)
    torch.addmm(AY, rows.A64, R, beta=0, out=AY)
    above_lower = torch.sub(AY, rows.lower, out=pool("above lower", rows.m, torch.float64))
    return above_lower, AY.sub_(rows.upper)


def _row_report(rows: ScaledRows, x: torch.Tensor, parts: list[Part], answers: list[torch.Tensor],
                y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the parts' answers (`Part.scatter`; x where no part holds a column) into `y` `[batch, n]`
    (the caller's layout and dtype) and report on it as returned: per sample the distance from `x` and the
    scaled max violation.

    It works through the batch a cache-sized slice at a time, slices side by side on CPU threads:
    over the whole batch at once its `[rows, batch]` temporaries cost a tenth of a large
    projection in page faults, and on one thread a sixth of a warm call's time. Each slice is put
    together in a contiguous block, which ATen transposes into `y` block by block; put together
    whole first, on the calling thread, the answer cost a tenth of a warm call on the synthetic
    8 × 24 scene (two threads), in page faults and while the other threads waited.
    """
    batch, n = y.shape
    violation, distance = (torch.zeros(batch, dtype=torch.float64, device=y.device) for _ in range(2))
    covered = torch.zeros(n, dtype=torch.bool, device=y.device)
    for part in parts:
        covered[part.columns.reshape(-1)] = True
    free = torch.nonzero(~covered).squeeze(1)

    def report(cols: slice, pool: BufferPool) -> None:
        R = pool("R", n, torch.float64)
        for part, answer in zip(parts, answers, strict=True):
            part.scatter(answer, cols, R)
        if free.numel():
            R.index_copy_(0, free, x[cols, free].T.to(torch.float64))
        returned = R
        if y.dtype != torch.float64:
            returned = pool("returned", n, y.dtype).copy_(R)
            R.copy_(returned)  # the violation is the returned y's, as rounded
        y[cols] = returned.T
        moved = pool("moved", n, torch.float64).view(-1, n).copy_(y[cols]).sub_(x[cols])  # in float64, in place
        distance[cols] = torch.linalg.vector_norm(moved, dim=1)
        if rows.m:
            above_lower, above_upper = _past_bounds(rows, R, pool)
            violation[cols] = worst_violation(above_upper, above_lower)

    _by_slices(report, batch, rows, y.device)
    return distance, violation


def _binding_mask(rows: ScaledRows, Y: torch.Tensor, tol: float) -> torch.Tensor:
    """`[batch, rows]`: where the returned answer, `Y` `[n, batch]`, holds a row within tol of a bound; a
    slice of the batch at a time, as `_row_report`."""
    batch = Y.shape[1]
    mask = torch.zeros(batch, rows.n_rows, dtype=torch.bool, device=Y.device)

    def near(cols: slice, pool: BufferPool) -> None:
        # contiguous: a strided slice halves the sparse product's speed
        above_lower, above_upper = _past_bounds(rows, pool("R", Y.shape[0], torch.float64).copy_(Y[:, cols]), pool)
        held = (above_lower.abs_() <= tol) | (above_upper.abs_() <= tol)
        if rows.m == rows.n_rows:  # every row kept, in order
            mask[cols] = held.T
        else:
            mask[cols][:, rows.kept] = held.T

    if rows.m:
        _by_slices(near, batch, rows, Y.device)
    return mask


def _by_slices(work: Callable[[slice, BufferPool], None], batch: int, rows: ScaledRows,
               device: torch.device) -> None:
    """`work` on each cache-sized slice of the batch (`_over_chunks`), with buffers that a thread's slices
    share."""
    def one(index: torch.Tensor) -> None:
        work(slice(int(index[0]), int(index[-1]) + 1), BufferPool(device, index.numel(), "report"))

    if batch:
        _over_chunks(one, torch.arange(batch, device=device), rows)


def _chunks(batch: int, device: torch.device, rows: ScaledRows, workers: int) -> list[slice]:
    """Equal slices of the batch: GPU_CHUNK_ENTRIES on GPUs; on CPU cache-sized, as many per thread.

    An equal share per worker matters: the-wake at batch 1024 in 3 chunks on 2 workers left one
    idle for a third of the time.
    """
    length = max(rows.m, rows.n_columns)
    if not cpu_tuned(device):
        size = max(1, GPU_CHUNK_ENTRIES // length)
    else:
        count = -(-batch // max(32, CPU_CHUNK_ENTRIES // length))
        threads = min(workers, batch * length // MIN_THREAD_ENTRIES)  # worth their start-up
        if threads > 1:
            count = -(-count // threads) * threads
        size = -(-batch // count)
    return [slice(start, min(start + size, batch)) for start in range(0, batch, size)]


@contextmanager
def _one_thread_per_chunk() -> Iterator[int]:
    """Run each chunk on one thread, chunks side by side; yields how many may run at once.

    The solver makes thousands of small tensor operations per second. Spread over
    torch's intra-op threads, each ends in a barrier, and on a busy machine one
    descheduled thread makes every barrier wait a scheduler slice: 2 threads on 2
    shared cores ran 3-7x slower than 1. Whole chunks per thread need no barriers.
    The setting is process-wide (new threads take it up), so it is restored on the way out, by the
    outermost of nested uses (`project` holds it while a part's leftovers run in the background).
    """
    outer = getattr(_calling, "workers", None)
    if outer is not None:
        yield outer
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    _calling.workers = before
    try:
        yield before
    finally:
        del _calling.workers
        torch.set_num_threads(before)


_calling = threading.local()  # `workers`: what the outermost `_one_thread_per_chunk` of this thread found


class _Workers:
    """The CPU threads chunks run on, kept from call to call with the solver buffers each shares
    (`BufferPool`).

    Threads made afresh for every call paged their buffers in afresh, and page faults cost: on the
    synthetic 8 × 24 scene the kernel took up to a fifth of a warm call's CPU time. The price is memory: each
    thread keeps the largest buffers it has used (a chunk's, `CPU_CHUNK_ENTRIES`: ~150 MB)
    until `release_buffers`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._threads = 0

    def get(self, threads: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._threads != threads:
                self._shutdown()
                self._pool = ThreadPoolExecutor(threads, "storydiff-projection", initializer=share_buffers)
                self._threads = threads
            return self._pool

    def release(self) -> None:
        with self._lock:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._pool = None


_workers = _Workers()


def release_buffers() -> None:
    """Free the solver buffers `project` keeps between calls (its CPU threads' and this thread's)."""
    _workers.release()
    stop_sharing_buffers()


def _done(value: T) -> Future[T]:
    """A future already done: what a chunk solved on the calling thread returns (`_over_chunks`)."""
    future: Future[T] = Future()
    future.set_result(value)
    return future


def _over_chunks(solve: Callable[[torch.Tensor], T], columns: torch.Tensor, rows: ScaledRows,
                 background: bool = False) -> list[Future[T]]:
    """`solve` on each chunk of `columns` (`_chunks`), side by side on CPU threads where that pays; returns
    the chunks' futures, done unless `background`: then the chunks run on the worker threads, even one
    alone, and the calling thread goes on (`project` overlaps a part's leftovers with the next part).
    """
    device = columns.device
    if not cpu_tuned(device):
        return [_done(solve(columns[cols])) for cols in _chunks(columns.numel(), device, rows, 1)]
    with _one_thread_per_chunk() as workers:
        chunks = [columns[cols] for cols in _chunks(columns.numel(), device, rows, workers)]
        if workers == 1 or (len(chunks) == 1 and not background):
            share_buffers()  # chunk after chunk on this thread, one solver at a time, as the next call will
            return [_done(solve(cols)) for cols in chunks]
        futures = [_workers.get(workers).submit(solve, cols) for cols in chunks]
        if not background:
            for future in futures:
                future.result()  # waits, and raises what the chunk raised
        return futures


def _over_chunks_into(out: ChunkResult, solve: Callable[[torch.Tensor], ChunkResult], columns: torch.Tensor,
                      rows: ScaledRows, background: bool = False) -> list[Future[None]]:
    """`solve` on each chunk of `columns` (`_over_chunks`), which writes its y and multipliers into those
    columns of `out`; the thread that solved it writes the rest of the result (steps added): joining
    them afterwards took a tenth of a warm call."""
    def into(cols: torch.Tensor) -> None:
        result = solve(cols)
        at = consecutive(cols) or cols  # a chain part's chunk holds ~10^5 columns: a slice, not an index
        out.rho[at] = result.rho
        out.newton[at] += result.newton
        out.cg[at] += result.cg
        out.converged[at] = result.converged

    return _over_chunks(into, columns, rows, background)


def _solve(part: Part, X: torch.Tensor, previous: torch.Tensor | None, mu: torch.Tensor, rho: torch.Tensor,
           target: float, settings: Settings, answer: torch.Tensor) -> tuple[ChunkResult, list[Future[None]]]:
    """Run the solver on one part, chunk by chunk, each chunk's result written into one answer (y into
    `answer`, `[n_part, columns]`); returns it and the futures of its last pass (`_over_chunks`), which the
    answer is complete after.

    Every part ends with the active-set finish on every chunk, then the augmented Lagrangian on what the
    chunks left, together: a few columns per chunk, each solved alone, would pay the solver's per-step
    overhead once per chunk (a third of a warm call on the synthetic 8 × 24 scene). The finish starts from
    the previous call's multipliers (`previous`: the last call's y, `_start`), on a chain part
    (`project_chains`) from any; a cold general part first runs the augmented Lagrangian until its
    multipliers name the binding rows (`Settings.cold_handoff`). Samples the finish started cold go on cold.
    The leftovers are few and run in the background on a worker thread while the next part starts:
    run in turn, they left the other threads idle for a tenth of a warm call (synthetic 8 × 24, batch 1024,
    two threads).
    """
    rows, batch, device = part.rows, X.shape[1], X.device
    samples = batch // part.chains
    every = torch.arange(batch, device=device)
    steps = (torch.zeros(batch, dtype=torch.long, device=device) for _ in range(2))
    out = ChunkResult(answer, torch.empty(rows.m, batch, dtype=torch.float64, device=device), torch.empty_like(rho), *steps,
                      torch.empty(batch, dtype=torch.bool, device=device))

    cold = torch.zeros(batch, dtype=torch.bool, device=device)  # warm starts the finish found worse than none
    handed: torch.Tensor | None = None  # where a cold start's augmented Lagrangian handed over (`out.y`)

    def alm(cols: torch.Tensor, handoff: float = 0.0) -> ChunkResult:
        x, mu0, rho0 = take_columns(X, cols), take_columns(mu, cols), rho[cols]
        y0 = (take_columns(handed, cols) if handed is not None
              else x if previous is None else part.take(previous, cols).to(torch.float64))
        if bool((restart := cold[cols]).any()):
            y0, mu0 = torch.where(restart, x, y0), mu0.masked_fill(restart, 0.0)
            rho0 = rho0.masked_fill(restart, settings.rho_start)
        result = AlmChunk(rows, part.bounds(cols, samples, reuse=True), x, y0, mu0, rho0, target, settings).run(handoff)
        put_columns(out.y, cols, result.y)
        put_columns(out.dual, cols, result.dual)
        return result

    def finish(cols: torch.Tensor) -> ChunkResult:
        # a run of columns (every chunk, unless a pass before settled some) is read and written in place
        first, last = int(cols[0]), int(cols[-1])  # `cols` is sorted: a run where it spans its length
        if last - first + 1 == cols.numel():
            at = slice(first, last + 1)
            x, mu0, into = X[:, at], mu[:, at], (out.y[:, at], out.dual[:, at])
        else:
            at, x, mu0, into = cols, take_columns(X, cols), take_columns(mu, cols), None
        bounds = part.bounds(cols, samples, reuse=True)
        found = (project_chains(bounds, x, mu0, target, settings.active_rounds, into) if part.rows.path
                 else active_set(rows, bounds, x, mu0, target, settings, into))
        if into is None:  # the settled columns only: the others keep their start for the augmented Lagrangian
            settled = torch.nonzero(found.solved).squeeze(1)
            put_columns(out.y, cols[settled], take_columns(found.y, settled))
            put_columns(out.dual, cols[settled], take_columns(found.dual, settled))
        cold[at] = found.cold
        return ChunkResult(y=found.y, dual=found.dual, rho=rho[at], newton=found.rounds, cg=found.cg,
                           converged=found.solved)

    todo = every
    if previous is None and not part.rows.path:
        _over_chunks_into(out, partial(alm, handoff=settings.cold_handoff), every, rows)
        todo = torch.nonzero(~out.converged).squeeze(1)
        # the passes below start from where it handed over: `out`'s columns hold that until a pass settles
        # them, and each reads a column's start before it writes the column (`active_set` copies it first)
        handed, mu, rho = out.y, out.dual, out.rho.clone()
    if todo.numel():
        _over_chunks_into(out, finish, todo, rows)
    rest = torch.nonzero(~out.converged).squeeze(1)
    return out, _over_chunks_into(out, alm, rest, rows, background=True) if rest.numel() else []


def _clamp(part: Part, X: torch.Tensor, rho: torch.Tensor) -> ChunkResult:
    """Variables held only by bounds of their own (chains of one beat): the projection is a clamp.

    Two rows can cross on one variable (a pin above its range): then no point meets
    both, and the sample reports not converged, as the iterative solver would.
    """
    lower, upper = part.bounds(torch.arange(X.shape[1], device=X.device), X.shape[1] // part.chains)
    y = torch.clamp(X, lower, upper)
    none = torch.zeros(X.shape[1], dtype=torch.long, device=X.device)
    return ChunkResult(y=y, dual=X - y, rho=rho, newton=none, cg=none, converged=(lower <= upper)[0])


def project(x: torch.Tensor, polytope: Polytope, warm_start: ProjectionInfo | ProjectionState | None = None,
            tol: float = 1e-6, settings: Settings | None = None) -> tuple[torch.Tensor, ProjectionInfo]:
    """Project each row of `x` `[batch, columns]` onto the polytope; returns `(y, info)`.

    `y` has x's dtype and device. The solver works to tol/10 in float64, so that rounding
    a float32 result keeps every row of a unit-scale scene within `tol`;
    `info.max_violation` is measured on the returned `y`. Raises ValueError if a row
    can be seen to be unsatisfiable on its own; a polytope that is empty only through
    several rows together comes back with `info.converged` False. On CPU the solver's
    threads and buffers stay for the next call; `release_buffers` frees them. `info` holds `y`
    itself, not a copy: change a copy of `y` where `info` will still be read (`binding_mask`) or
    warm-start a call.
    """
    _check_input(x, polytope, tol)
    settings = settings or Settings()
    rows = scaled_rows(polytope, x.device)
    # x in the solver's layout `[n, batch]`, a view from which each part gathers its own columns (copying it
    # whole first took as long again, on the calling thread alone)
    X = x.detach().to(torch.float64).T
    batch = X.shape[1]
    state = warm_start.state if isinstance(warm_start, ProjectionInfo) else warm_start
    if state is not None and (state.shape != (rows.n_rows, rows.n_columns, rows.m) or state.y.shape[1] != batch):
        state = None
    parts = _parts(rows, batch) if rows.m and batch else []
    duals, rhos = [], []
    newton, cg = (torch.zeros(batch, dtype=torch.long, device=x.device) for _ in range(2))
    converged = torch.ones(batch, dtype=torch.bool, device=x.device)
    solved = []
    # Each part's input (gathered from X) and y (put into the caller's y by `_row_report`) live only while
    # this call runs; on CPU they reuse the storage the last call's took (`BufferPool`): fresh ones cost page
    # faults, and on the synthetic 8 × 24 scene at batch 1024 the gather on this thread held the solver
    # threads back.
    if cpu_tuned(x.device):
        share_buffers()
    with _one_thread_per_chunk() if cpu_tuned(x.device) else nullcontext():
        for index, part in enumerate(parts):
            buffers, n = BufferPool(x.device, part.chains * batch, f"part {index}"), part.columns.shape[0]
            Xp = part.gather(X, buffers("input", n, torch.float64))
            previous, mu0, rho0 = _start(part, Xp, state, index, settings)
            if part.one_beat:
                solved.append((_clamp(part, Xp, rho0), []))
            else:
                solved.append(_solve(part, Xp, previous, mu0, rho0, tol * TARGET_SHARE, settings,
                                     buffers("y", n, torch.float64)))
        for _, pending in solved:
            for future in pending:
                future.result()  # waits, and raises what the chunk raised
    for part, (out, _) in zip(parts, solved, strict=True):
        duals.append(out.dual)
        rhos.append(out.rho)
        newton = torch.maximum(newton, part.per_sample(out.newton))
        cg = torch.maximum(cg, part.per_sample(out.cg))
        converged &= part.per_sample(out.converged, every=True)
    y = torch.empty_like(x)
    distance, violation = _row_report(rows, x.detach(), parts, [out.y for out, _ in solved], y)
    info = ProjectionInfo(
        distance=distance, max_violation=violation, iterations=newton,
        linear_iterations=cg, converged=converged, names=polytope.names,
        state=ProjectionState(y=y.T, duals=duals, rhos=rhos, shape=(rows.n_rows, rows.n_columns, rows.m)),
        rows=rows, parts=parts, tol=tol,
    )
    return y, info
