"""The constraint rows as the projection solver uses them: scaled, cleaned, on the right device.

Every row is divided by its Euclidean norm, so that a residual in these units is the
"max violation, scaled by row norm" that `Polytope.violation` reports and that `tol`
bounds. Rows with no variables, or with no finite bound, can never bind and are
dropped (an empty row that cannot be met is an error naming it). The matrix is kept
as CSR in float64 (residuals, line search) and float32 (conjugate-gradient products),
each with its transpose, because `torch.addmm` on a CSR matrix into a preallocated
output is the fast batched product on both CPU (MKL) and CUDA (cuSPARSE).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from .polytope import Polytope

_CACHE_SIZE = 8
_cache: OrderedDict[tuple, tuple[tuple[torch.Tensor, ...], ScaledRows]] = OrderedDict()


@dataclass
class ScaledRows:
    """`lower ≤ A·y ≤ upper` with unit-norm rows; `kept[i]` is row i's index in the polytope."""

    A64: torch.Tensor
    AT64: torch.Tensor
    A32: torch.Tensor
    AT32: torch.Tensor
    lower: torch.Tensor  # [m, 1] float64, may hold -inf
    upper: torch.Tensor  # [m, 1] float64, may hold +inf
    kept: torch.Tensor   # [m] long, into the polytope's rows
    norms: torch.Tensor  # [m] float64, the kept rows' norms before scaling
    n_rows: int          # rows of the polytope, kept or not
    n_columns: int
    row_norms: torch.Tensor  # [n_rows] float64 on CPU, every row's norm (0 for an empty one)
    path: bool = False   # the rows of `projection_parts._path`: boxes y_t, then differences (y_{t+1} − y_t)/√2
    parts: dict = field(default_factory=dict, repr=False)  # "whole" / least columns: its parts, once cut
    # its RowKinds once built: a list that every ScaledRows of this matrix shares, whatever its bounds
    kinds_built: list = field(default_factory=list, repr=False)

    @property
    def m(self) -> int:
        return int(self.kept.numel())

    def kinds(self) -> RowKinds:
        """The rows split by kind (`RowKinds`), built once per matrix."""
        if not self.kinds_built:
            self.kinds_built.append(_row_kinds(self.A64))
        return self.kinds_built[0]


@dataclass(frozen=True)
class RowKinds:
    """The rows in two kinds: on one variable (a range, a "never", a pin: half a scene's rows) and on more.

    After scaling a one-variable row is ±e_j. In the augmented Lagrangian's Newton matrix
    `I + Aᵀ diag(D) A` it only adds D_i to the diagonal at j (`box` sums those once per Newton
    step); in an active-set solve it fixes y_j at its bound (`projection_active`). Either way the
    conjugate-gradient products run over the other rows alone.
    """

    multi: torch.Tensor          # [m_multi] long, the rows with two or more variables
    A: torch.Tensor              # [m_multi, n] CSR float32
    AT: torch.Tensor             # [n, m_multi] CSR float32
    A64: torch.Tensor            # [m_multi, n] CSR float64
    AT64: torch.Tensor           # [n, m_multi] CSR float64
    box: torch.Tensor            # [n, m] CSR float32, 1 at (j, i) for each one-variable row i on column j
    single: torch.Tensor         # [m_single] long, the one-variable rows
    single_column: torch.Tensor  # [m_single] long, the variable each holds
    single_sign: torch.Tensor    # [m_single, 1] float64, its coefficient: ±1


def _row_kinds(A64: torch.Tensor) -> RowKinds:
    (m, n), device = A64.shape, A64.device
    coo = A64.to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    vals = coo.values()
    per_row = torch.bincount(rows, minlength=m)
    multi = torch.nonzero(per_row > 1).flatten()
    renumber = torch.full((m,), -1, dtype=torch.long, device=rows.device)
    renumber[multi] = torch.arange(multi.numel(), device=rows.device)
    on = per_row[rows] > 1
    A64_multi, AT64_multi, A32_multi, AT32_multi = csr_pair(renumber[rows[on]], cols[on], vals[on],
                                                            (multi.numel(), n), device)
    single = ~on
    return RowKinds(multi=multi, A=A32_multi, AT=AT32_multi, A64=A64_multi, AT64=AT64_multi,
                    box=_csr(cols[single], rows[single], torch.ones(int(single.sum()), device=rows.device),
                             (n, m), device, torch.float32),
                    single=rows[single], single_column=cols[single], single_sign=vals[single].sign().unsqueeze(1))


def _csr(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, shape: tuple[int, int],
         device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """CSR on `device`; on CPU with int32 indices, which MKL takes as they are.

    With int64 indices every CPU product first copies both index arrays to int32
    (torch 2.13): 4-9 µs of each ~25 µs product at batch 1, a tenth of a projection.
    """
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, shape, check_invariants=False)
    csr = coo.coalesce().to_sparse_csr().to(device=device, dtype=dtype)
    if csr.device.type != "cpu":
        return csr
    return torch.sparse_csr_tensor(csr.crow_indices().to(torch.int32), csr.col_indices().to(torch.int32),
                                   csr.values(), shape)


def csr_pair(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, shape: tuple[int, int],
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The matrix and its transpose as CSR on `device`, in float64 and float32: (A64, AT64, A32, AT32)."""
    shape_t = (shape[1], shape[0])
    return (_csr(rows, cols, vals, shape, device, torch.float64), _csr(cols, rows, vals, shape_t, device, torch.float64),
            _csr(rows, cols, vals, shape, device, torch.float32), _csr(cols, rows, vals, shape_t, device, torch.float32))


def _check_rows(polytope: Polytope, norms: torch.Tensor) -> None:
    """Reject rows no point can meet: lower > upper, or an empty row whose bounds exclude 0."""
    lo, hi = polytope.lower.to(torch.float64), polytope.upper.to(torch.float64)
    crossed = torch.nonzero(lo > hi).flatten()
    empty = torch.nonzero((norms == 0) & ((lo > 0) | (hi < 0))).flatten()
    for kind, idx in (("its lower bound exceeds its upper bound", crossed), ("it has no variables", empty)):
        if idx.numel():
            i = int(idx[0])
            raise ValueError(f"row {polytope.names[i]!r} cannot be met: {kind} "
                             f"({float(lo[i])} ≤ · ≤ {float(hi[i])}); the polytope is empty")


def _kept_rows(norms: torch.Tensor, polytope: Polytope) -> torch.Tensor:
    """Rows that can bind: some variable and some finite bound."""
    lo, hi = polytope.lower.to(torch.float64), polytope.upper.to(torch.float64)
    return torch.nonzero((norms > 0) & (torch.isfinite(lo) | torch.isfinite(hi))).flatten()


def _bounded(matrix: ScaledRows, polytope: Polytope, device: torch.device) -> ScaledRows:
    """`matrix`'s scaled rows with `polytope`'s bounds, divided by the same norms."""
    kept, norms = matrix.kept.cpu(), matrix.norms.cpu()
    lo, hi = polytope.lower.to(torch.float64)[kept], polytope.upper.to(torch.float64)[kept]
    return ScaledRows(A64=matrix.A64, AT64=matrix.AT64, A32=matrix.A32, AT32=matrix.AT32,
                      lower=(lo / norms).unsqueeze(1).to(device), upper=(hi / norms).unsqueeze(1).to(device),
                      kept=matrix.kept, norms=matrix.norms, n_rows=matrix.n_rows, n_columns=matrix.n_columns,
                      row_norms=matrix.row_norms, kinds_built=matrix.kinds_built)


def build_scaled_rows(polytope: Polytope, device: torch.device) -> ScaledRows:
    """The polytope's rows scaled to unit norm, cleaned and on `device` (uncached; see `scaled_rows`)."""
    m, n = polytope.shape
    coo = polytope.A.to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    vals = coo.values().to(torch.float64)
    norms = torch.zeros(m, dtype=torch.float64).index_add_(0, rows, vals * vals).sqrt()
    _check_rows(polytope, norms)
    kept = _kept_rows(norms, polytope)
    new_index = torch.full((m,), -1, dtype=torch.long)
    new_index[kept] = torch.arange(kept.numel())
    on = new_index[rows] >= 0
    r, c, v = new_index[rows[on]], cols[on], vals[on] / norms[rows[on]]
    A64, AT64, A32, AT32 = csr_pair(r, c, v, (kept.numel(), n), device)
    empty = torch.empty(0, 1, dtype=torch.float64)
    matrix = ScaledRows(A64=A64, AT64=AT64, A32=A32, AT32=AT32, lower=empty, upper=empty,
                        kept=kept.to(device), norms=norms[kept].to(device), n_rows=m, n_columns=n, row_norms=norms)
    return _bounded(matrix, polytope, device)


def scaled_rows(polytope: Polytope, device: torch.device) -> ScaledRows:
    """The prepared rows of `polytope` on `device`, built once and reused while the polytope is unchanged.

    The cache is keyed by the identity of the polytope's tensors (kept alive by the
    cache, so an identity cannot be reused), so a sampler that projects onto the same
    situation every step pays the setup once. Tensors edited in place are not noticed.
    """
    tensors = (polytope.A, polytope.lower, polytope.upper)
    key = (*map(id, tensors), str(device))
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key][1]
    prepared = _same_matrix(polytope, device)
    if prepared is None:
        prepared = build_scaled_rows(polytope, device)
    _cache[key] = (tensors, prepared)
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return prepared


def _same_matrix(polytope: Polytope, device: torch.device) -> ScaledRows | None:
    """A cached polytope's rows with these bounds, where its matrix is this one and the same rows bind.

    An agent's constraint window keeps its matrix from beat to beat and only moves its
    bounds (the beats played become constants): scaling and transposing the matrix
    again each beat would cost a quarter of the projection's time at batch 1.
    """
    for (A, _, _), prepared in reversed(_cache.values()):
        if A is polytope.A and prepared.A64.device == torch.device(device):
            _check_rows(polytope, prepared.row_norms)
            if torch.equal(_kept_rows(prepared.row_norms, polytope), prepared.kept.cpu()):
                return _bounded(prepared, polytope, device)
            return None
    return None
