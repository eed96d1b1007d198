"""Batched conjugate gradients: one SPD system per column, columns dropped as they converge.

Each sample of a batch has its own Newton matrix, so each column runs its own CG
recurrence (Hestenes & Stiefel 1952) with its own step sizes. The cost of an
iteration is proportional to the number of columns still iterating, so converged
columns are compacted away once they are half of the batch: without that, every
solve would cost as much as its slowest sample.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import torch

_thread = threading.local()  # `storage`: the flat buffers this thread's pools share, while it shares them


class ColumnOperator(Protocol):
    """A matrix per column: `out[:, j] = M_j p[:, j]`; `keep` keeps only the columns listed, for good."""

    def __call__(self, p: torch.Tensor, out: torch.Tensor) -> None: ...

    def keep(self, index: torch.Tensor) -> None: ...


class BufferPool:
    """Flat buffers viewed as `[rows, b]` for the current number `b` of live samples.

    Reusing storage matters on CPU: fresh multi-megabyte tensors every step cost
    page faults that take longer than the sparse products themselves. Where the thread
    shares buffers (`share_buffers`), a pool takes the storage the last pool of the same
    `owner` used: a thread solves its chunks one after another, so the next chunk's
    solver reuses the last one's memory (a warm call on the synthetic 8 × 24 scene paged
    in each chunk's buffers afresh, ~60,000 faults).
    """

    def __init__(self, device: torch.device, capacity: int, owner: str):
        self.device, self.capacity, self.b, self.owner = device, capacity, capacity, owner
        self._flat: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, rows: int, dtype: torch.dtype) -> torch.Tensor:
        flat = self._flat.get(name)
        if flat is None:
            flat = self._flat[name] = self._storage(name, rows * self.capacity, dtype)
        return flat[: rows * self.b].view(rows, self.b)

    def _storage(self, name: str, size: int, dtype: torch.dtype) -> torch.Tensor:
        shared = getattr(_thread, "storage", None)
        if shared is None:
            return torch.empty(size, dtype=dtype, device=self.device)
        key = (self.owner, name, dtype, self.device)
        flat = shared.get(key)
        if flat is None or flat.numel() < size:
            flat = shared[key] = torch.empty(size, dtype=dtype, device=self.device)
        return flat[:size]


def share_buffers() -> None:
    """From now on the pools this thread makes share storage by owner and name (`BufferPool`): only for a
    thread that runs one solver of each owner at a time, and only until `stop_sharing_buffers`. A thread
    that shares already keeps its storage: the next call's solvers reuse it."""
    if getattr(_thread, "storage", None) is None:
        _thread.storage = {}


def stop_sharing_buffers() -> None:
    """Let the shared storage go; the thread's pools allocate their own again."""
    _thread.__dict__.pop("storage", None)


def cpu_tuned(device: torch.device) -> bool:
    """Whether work on `device` takes the routes tuned for CPU caches and threads: chunks on worker threads,
    runs of columns copied as slices, narrow reductions folded. Other devices take the routes written for
    GPUs, which run anywhere: the tests run them on CPU by turning this off."""
    return device.type == "cpu"


def consecutive(index: torch.Tensor) -> slice | None:
    """`index` (1-D long, on CPU) as a slice where it is a run of consecutive numbers (a chunk of the batch)."""
    if not cpu_tuned(index.device) or index.numel() < 2 or not bool((index.diff() == 1).all()):
        return None
    return slice(int(index[0]), int(index[-1]) + 1)


def take_columns(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`t[:, index]` (a copy) for a 1-D long `index`, by the fastest route on CPU.

    A run of consecutive columns — a chunk of the batch — is copied as a slice, 3-8x faster than
    any gather (torch 2.13, one thread: 74 of 1,024 columns of 12,280 rows, 4.9 ms gathered, 0.65 ms
    sliced). Otherwise: boolean-mask indexing along the contiguous dimension is 3-12x slower
    ([1,370-2,818 rows, 372 columns]); `index_select` is fastest for float32 and `gather` for
    float64, where `index_select` is as slow as the mask.
    """
    if (run := consecutive(index)) is not None:
        return t[:, run].clone(memory_format=torch.contiguous_format)
    if t.dtype == torch.float32:
        return t.index_select(1, index)
    return torch.gather(t, 1, index.expand(t.shape[0], -1))


def put_columns(out: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> None:
    """`out[:, index] = values` (1-D long `index`): a run of consecutive columns as a slice, else a
    scatter, 4-5x faster on CPU than index_put."""
    if (run := consecutive(index)) is not None:
        out[:, run] = values
        return
    out.scatter_(1, index.expand(out.shape[0], -1), values)


def copy_columns(out: torch.Tensor, values: torch.Tensor, where: torch.Tensor) -> None:
    """`out[:, where] = values[:, where]` for a 1-D boolean `where`: on CPU run by run of consecutive columns.

    `out` is a chunk's columns of a `[rows, batch]` answer, where every row lies on a page of its own: a
    scatter there cost 5x as much as into a contiguous block (12,280 rows, 40 of 79 columns, one thread),
    so `projection_active.active_set` gathers its settled columns in one and copies them over at the end.
    """
    if not cpu_tuned(out.device):
        out.copy_(torch.where(where, values, out))
        return
    none = torch.zeros(1, dtype=torch.int8)
    edges = torch.diff(where.to(torch.int8), prepend=none, append=none)
    starts, ends = torch.nonzero(edges == 1).flatten().tolist(), torch.nonzero(edges == -1).flatten().tolist()
    for start, end in zip(starts, ends, strict=True):
        out[:, start:end] = values[:, start:end]


# `over_rows` folds a narrow `[rows, b]` tensor to about this many columns: ATen reduces along dim 0 with
# vector instructions across the columns, so a narrow one leaves them idle (torch 2.13, one thread: amax
# over [12,280, 74] float64 0.48 ms as it is, 0.12 ms folded to [2,047, 444]; bool all 0.97 ms → 0.38).
FOLD_WIDTH = 512


def over_rows(reduce: Callable[..., torch.Tensor], t: torch.Tensor) -> torch.Tensor:
    """`reduce(t, dim=0)` for an associative `reduce` (`torch.amax`, `amin`, `any`, `all`) of a 2-D `t`, by
    the faster route on CPU: a narrow contiguous `t` is reduced as `[rows / k, k·b]`, then over its k blocks."""
    rows, b = t.shape
    fold = min(rows, -(-FOLD_WIDTH // max(b, 1)))
    if not cpu_tuned(t.device) or fold < 2 or not t.is_contiguous():
        return reduce(t, dim=0)
    whole = rows - rows % fold
    out = reduce(reduce(t[:whole].view(whole // fold, fold * b), dim=0).view(fold, b), dim=0)
    return out if whole == rows else reduce(torch.stack([out, reduce(t[whole:], dim=0)]), dim=0)


def dot(a: torch.Tensor, b: torch.Tensor, scratch: torch.Tensor | None = None, keepdim: bool = False) -> torch.Tensor:
    """Column-wise dot products of `[rows, b]` tensors, through `scratch` if given (`[1, b]` if `keepdim`).

    A product buffer that is reused matters on CPU, where a fresh multi-megabyte
    temporary costs page faults that outweigh the arithmetic.
    """
    product = a * b if scratch is None else torch.mul(a, b, out=scratch)
    return product.sum(dim=0, keepdim=keepdim)


def conjugate_gradients(operator: ColumnOperator, rhs: torch.Tensor, forcing: float | torch.Tensor, max_steps: int,
                        steps: torch.Tensor, floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve `M_j x_j = rhs_j` to `‖residual_j‖ ≤ max(forcing·‖rhs_j‖, floor)` from x = 0.

    `forcing` is one number, or one per column as a `[1, b]` tensor.

    Returns x and which columns reached that tolerance within `max_steps`; adds each
    column's steps to `steps`.
    Started from zero, every iterate is a descent direction for the quadratic that
    `M_j` and `rhs_j` define, so a truncated solve is still a usable Newton step.
    """
    x_out = torch.zeros_like(rhs)
    solved = torch.ones(rhs.shape[1], dtype=torch.bool, device=rhs.device)
    live = torch.arange(rhs.shape[1], device=rhs.device)
    r, x = rhs.clone(), torch.zeros_like(rhs)
    p, q, scratch = r.clone(), torch.empty_like(rhs), torch.empty_like(rhs)
    # per-column scalars are kept as [1, b] rows, which broadcast against [n, b] without a view each step
    rz = dot(r, r, scratch, keepdim=True)
    target = (rz * forcing ** 2).clamp_min_(floor ** 2)
    active = rz > target
    taken = torch.zeros_like(active, dtype=steps.dtype)  # steps of the live columns, added to `steps` on compaction
    for _ in range(max_steps):
        count = int(active.sum())
        if count == 0:
            break
        if 2 * count <= live.numel():
            put_columns(x_out, live, x)
            steps.index_add_(0, live, taken[0])
            keep = torch.nonzero(active[0]).squeeze(1)
            live, rz, target, active = live[keep], rz[:, keep], target[:, keep], active[:, keep]
            r, x, p = (take_columns(v, keep) for v in (r, x, p))
            operator.keep(keep)
            q, scratch, taken = torch.empty_like(r), torch.empty_like(r), torch.zeros_like(taken[:, keep])
        taken += active
        operator(p, q)
        alpha = torch.where(active, rz / dot(p, q, scratch, keepdim=True).clamp_min(1e-30), 0.0)
        x.addcmul_(p, alpha)
        r.addcmul_(q, alpha, value=-1.0)
        rz_next = dot(r, r, scratch, keepdim=True)
        active &= rz_next > target
        p.mul_(rz_next / rz.clamp_min(1e-30)).add_(r)
        rz = rz_next
    put_columns(x_out, live, x)
    steps.index_add_(0, live, taken[0])
    solved[live] = ~active[0]
    return x_out, solved
