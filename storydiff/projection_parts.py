"""A constraint set cut into independent parts, so that each converges and leaves the batch alone.

A compiled scene is block-diagonal: no row crosses characters, and the variables that
no mood, event or display row touches — stance, the shown emotions no rule ties to
felt — are *chains*: one variable across the beats, held only by rows on it alone
(ranges, pins) and rows on it at two neighbouring beats (volatility). Solved as one
problem, every sample waits for the slowest of its ~1,000 chains: 20 Newton steps on
the bundled scenes, where one chain alone needs 8.7 on average. So the rows split into
*general* parts (everything else, one per character where no row joins them) and one
*chain* part per chain length, whose chains share one path pattern of unit-norm rows (a box at each position,
a difference between neighbours) and differ only in their bounds: there every chain of
every sample is a column of its own, dropped as soon as it has converged.

Multipliers map back: a chain's box at a position may gather several rows (a range and
a pin); the one that sets the bound that holds takes the multiplier.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from .projection_cg import BufferPool, consecutive
from .projection_rows import ScaledRows, csr_pair

# A split pays once a batch holds this many entries (samples × columns): below it each part
# repeats the solver's per-step overhead, which is what a small batch's time is made of (bundled
# scenes, one thread: the-wake at batch 4, 11,800 entries, 0.040 s split against 0.055 s whole; storm
# at batch 32, 25,600 entries, level; at batch 128, 0.110 against 0.131; at batch 1 a split is up to 2×
# slower).
MIN_SPLIT_ENTRIES = 2**14
# Independent pieces of the general part are solved apart once each holds this many entries (columns ×
# batch; `group_columns`): bundled scenes, one thread, pieces of one character apart against together:
# at batch 256 (~50,000 entries each) 5-15% less time warm and 10-25% cold; at batch 32 (~7,000) 15-50%
# more; a pool of 64 scenes at batch 1 in 154 pieces of ~200 entries took 12x as long.
GROUP_ENTRIES = 2**15
# A part's missing bounds: finite, so that the active-set solvers' 0/1 masks can multiply them (inf × 0 is
# NaN); no active row has one. Set once per part: clamping each chunk's bounds cost two fresh copies each.
HUGE = 1e300


@dataclass
class Part:
    """One independent piece of the problem: `rows` over its own columns.

    `columns[j]` is the polytope column of the part's column j; for a chain part
    `columns` is `[L, k]` (position, chain) and every chain of every sample is a
    solver column, ordered chain-major (chain c of sample s is column c·batch + s), so that
    the solver's layout is the polytope layout's rows, gathered, with no transposition.
    `lower`/`upper` are `[m, 1]` for a general part and `[m, k]` (per chain) for a chain part,
    ±`HUGE` where a row has none. `row_lower` / `row_upper` give, per part row (and chain), the
    index into the scaled rows of the row that sets that bound (−1: none) and `sign_*` its
    coefficient's sign relative to the part row's.
    """

    rows: ScaledRows
    columns: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    row_lower: torch.Tensor
    row_upper: torch.Tensor
    sign_lower: torch.Tensor
    sign_upper: torch.Tensor
    whole: bool = False  # every column, in order: gathering is the identity

    @property
    def one_beat(self) -> bool:
        """A chain part of one-beat chains: variables held only by their own bounds, a clamp."""
        return self.columns.dim() == 2 and self.columns.shape[0] == 1

    @property
    def chains(self) -> int:
        """Columns per sample of a chain part (its chains); 1 for a general part."""
        return self.columns.shape[1] if self.columns.dim() == 2 else 1

    def gather(self, X: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """`[n, b]` polytope layout (any strides) → the part's `[n_part, chains·b]` solver layout, in `out` if
        given."""
        if self.whole:
            return X if out is None else out.copy_(X)
        index = self.columns.reshape(-1)
        rows = out.view(index.numel(), -1) if out is not None else None
        return torch.index_select(X, 0, index, out=rows).view(self.columns.shape[0], -1)

    def take(self, X: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """`gather(X)[:, cols]` for solver columns `cols` (1-D long) without gathering the rest."""
        if self.whole:
            return X[:, cols]
        if self.columns.dim() == 1:
            return X[self.columns.unsqueeze(1), cols]
        batch = X.shape[1]
        return X[self.columns[:, torch.div(cols, batch, rounding_mode="floor")], cols % batch]

    def scatter(self, Y: torch.Tensor, samples: slice, into: torch.Tensor) -> None:
        """Write `samples` of the part's solver-layout values `Y` into its rows of `into` `[n, len(samples)]`
        (the polytope layout)."""
        if self.whole:
            into.copy_(Y[:, samples])
            return
        if self.columns.dim() == 1:
            into.index_copy_(0, self.columns, Y[:, samples])
            return
        L, k = self.columns.shape
        chains = Y.view(L, k, -1)[:, :, samples]  # a copy, 2x faster into index_copy_ than as it is indexed
        into.index_copy_(0, self.columns.reshape(-1), chains.reshape(L * k, -1))

    def bounds(self, cols: torch.Tensor, batch: int, reuse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The bounds of solver columns `cols` (1-D long) of a batch of `batch` samples: shared, or each
        column's chain's. `reuse`: a chunk's are written into this thread's shared buffers (`BufferPool`),
        which its next call with `reuse` overwrites (fresh, they were a third of a warm call's new memory on
        the synthetic 8 × 24 scene at batch 1024)."""
        if self.columns.dim() == 1:
            return self.lower, self.upper
        if (run := consecutive(cols)) is not None:  # a chunk: a few chains, sample after sample, 25x faster than indexing
            first, last = run.start // batch, (run.stop - 1) // batch
            within = slice(run.start - first * batch, run.stop - first * batch)
            m, chains = len(self.lower), last - first + 1
            pool = BufferPool(cols.device, chains * batch, "chain bounds") if reuse else None
            spread = []
            for name, b in (("lower", self.lower), ("upper", self.upper)):
                full = pool(name, m, b.dtype) if pool else b.new_empty(m, chains * batch)
                full.view(m, chains, batch).copy_(b[:, first:last + 1].unsqueeze(2))  # each chain's, sample after sample
                spread.append(full[:, within])
            return spread[0], spread[1]
        chain = torch.div(cols.to(self.lower.device), batch, rounding_mode="floor")
        return self.lower[:, chain], self.upper[:, chain]

    def per_sample(self, values: torch.Tensor, every: bool = False) -> torch.Tensor:
        """`[chains·b]` → `[b]`: the most any of a sample's chains needed (`every`: whether all of them hold)."""
        per_chain = values.view(self.chains, -1)
        return per_chain.all(dim=0) if every else per_chain.amax(dim=0)

    def multipliers(self, dual: torch.Tensor, out: torch.Tensor) -> None:
        """Write the part's `[m_part, chains·b]` multipliers into its rows of `out` `[m, b]` (the scaled set's rows)."""
        m = dual.shape[0]
        D = dual.view(m, self.chains, -1)  # [m_part, chains, b]
        upper = D > 0
        row = torch.where(upper, self.row_upper.unsqueeze(2), self.row_lower.unsqueeze(2))
        sign = torch.where(upper, self.sign_upper.unsqueeze(2), self.sign_lower.unsqueeze(2))
        held = (D != 0) & (row >= 0)
        sample = torch.arange(D.shape[2], device=dual.device).view(1, 1, -1).expand_as(D)
        out[row[held], sample[held]] = D[held] * sign[held]


def whole(rows: ScaledRows) -> Part:
    """The problem as one part: every row, every column."""
    m, device = rows.m, rows.lower.device
    index = torch.arange(m, device=device).unsqueeze(1)
    ones = torch.ones(m, 1, dtype=torch.float64, device=device)
    return Part(rows, torch.arange(rows.n_columns, device=device), *_finite(rows.lower, rows.upper),
                index, index, ones, ones, whole=True)


def _finite(lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The bounds with ±`HUGE` for ±inf."""
    return lower.clamp_min(-HUGE), upper.clamp_max(HUGE)


def group_columns(batch: int) -> int:
    """The fewest columns a general part may have at this batch size: GROUP_ENTRIES, to a power of two."""
    return 1 << max(0, math.ceil(math.log2(GROUP_ENTRIES / max(batch, 1))))


def split(rows: ScaledRows, least_columns: int) -> list[Part]:
    """The general parts (independent pieces of at least `least_columns` columns, `_groups`) and one chain
    part per chain length."""
    A = _scipy(rows)
    chain_of, position = _chains(A)
    general_rows = np.nonzero(chain_of[_first_column(A)] < 0)[0]
    parts = [_general(rows, A, group) for group in _groups(A, general_rows, least_columns)]
    on_chain = chain_of >= 0
    lengths = np.bincount(chain_of[on_chain])
    for L in np.unique(lengths):
        parts.append(_chain_part(rows, A, chain_of, position, lengths, int(L)))
    return parts


def _scipy(rows: ScaledRows) -> sp.csr_matrix:
    A = rows.A64.cpu()
    return sp.csr_matrix((A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()),
                         shape=(rows.m, rows.n_columns))


def _first_column(A: sp.csr_matrix) -> np.ndarray:
    return A.indices[A.indptr[:-1]]


def _components(A: sp.csr_matrix) -> np.ndarray:
    """Per column, its connected component: columns joined by a row they share, directly or through others."""
    pattern = A.copy()
    pattern.data[:] = 1.0
    return connected_components(pattern.T @ pattern, directed=False)[1]


def _chains(A: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per column: its chain (−1: not on one) and its position along it.

    A component is a chain when its rows hold one column, or two with opposite
    coefficients at neighbouring positions once its columns are sorted (a compiled
    scene numbers a variable's beats in order).
    """
    n = A.shape[1]
    label = _components(A)
    per_row = np.diff(A.indptr)
    order = np.lexsort((np.arange(n), label))
    sizes = np.bincount(label)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - starts[label[order]]
    first = _first_column(A)
    ok = np.ones(sizes.size, dtype=bool)
    ok[label[first[per_row > 2]]] = False
    two = np.nonzero(per_row == 2)[0]
    a, b = A.indptr[two], A.indptr[two] + 1
    neighbours = np.abs(position[A.indices[a]] - position[A.indices[b]]) == 1
    opposite = np.abs(A.data[a] + A.data[b]) <= 1e-12
    ok[label[A.indices[a][~(neighbours & opposite)]]] = False
    has_rows = np.zeros(sizes.size, dtype=bool)
    has_rows[label[first]] = True
    ok &= has_rows
    chain_ids = np.full(sizes.size, -1)
    chain_ids[ok] = np.arange(int(ok.sum()))
    return chain_ids[label], position


def _groups(A: sp.csr_matrix, row_ids: np.ndarray, least: int) -> list[np.ndarray]:
    """`row_ids` split by connected component (a compiled scene: one per character), small ones merged.

    Apart, each sample's characters settle on their own instead of all waiting for the slowest;
    components of fewer than `least` columns are gathered into parts that large, so that small
    pieces do not each pay the solver's per-step overhead (GROUP_ENTRIES).
    """
    sub = A[row_ids]
    label = _components(sub)
    row_label = label[_first_column(sub)]
    width = np.bincount(label[np.unique(sub.indices)], minlength=label.max() + 1)
    groups: list[list[np.ndarray]] = []
    columns = least  # of the group being filled: full, so the first component starts one
    for component in np.unique(row_label):
        if columns >= least:
            groups.append([])
            columns = 0
        groups[-1].append(row_ids[row_label == component])
        columns += int(width[component])
    if len(groups) > 1 and columns < least:
        small = groups.pop()
        groups[-1].extend(small)
    return [np.sort(np.concatenate(group)) for group in groups]


def _general(rows: ScaledRows, A: sp.csr_matrix, row_ids: np.ndarray) -> Part:
    sub = A[row_ids]
    columns = np.unique(sub.indices)
    renumber = np.full(A.shape[1], -1)
    renumber[columns] = np.arange(columns.size)
    coo = sub.tocoo()
    device = rows.lower.device
    ids = torch.from_numpy(row_ids).to(device)
    A64, AT64, A32, AT32 = csr_pair(torch.from_numpy(coo.row), torch.from_numpy(renumber[coo.col]),
                                    torch.from_numpy(coo.data), (row_ids.size, columns.size), device)
    part_rows = ScaledRows(A64, AT64, A32, AT32, rows.lower[ids], rows.upper[ids], rows.kept[ids], rows.norms[ids],
                           n_rows=rows.n_rows, n_columns=int(columns.size), row_norms=rows.row_norms)
    ones = torch.ones(row_ids.size, 1, dtype=torch.float64, device=device)
    return Part(part_rows, torch.from_numpy(columns.astype(np.int64)).to(device), *_finite(part_rows.lower, part_rows.upper),
                ids.unsqueeze(1), ids.unsqueeze(1), ones, ones)


def _chain_part(rows: ScaledRows, A: sp.csr_matrix, chain_of: np.ndarray, position: np.ndarray,
                lengths: np.ndarray, L: int) -> Part:
    """The chains of length L: the path pattern, and each chain's bounds and rows."""
    chains = np.nonzero(lengths == L)[0]
    slot = np.full(lengths.size, -1)
    slot[chains] = np.arange(chains.size)
    k, m = chains.size, 2 * L - 1
    columns = np.empty((L, k), dtype=np.int64)
    mine = np.nonzero((chain_of >= 0) & (slot[np.maximum(chain_of, 0)] >= 0))[0]
    columns[position[mine], slot[chain_of[mine]]] = mine
    # each row's place in the pattern: box t (one column) or difference t → t+1 (two)
    first = _first_column(A)
    row_ids = np.nonzero((chain_of[first] >= 0) & (slot[np.maximum(chain_of[first], 0)] >= 0))[0]
    starts = A.indptr[row_ids]
    two = np.diff(A.indptr)[row_ids] == 2
    pos = position[A.indices[starts]]
    coef = A.data[starts]
    second = np.where(two, A.indptr[row_ids] + 1, starts)
    pos2 = position[A.indices[second]]
    # the pattern's row is +y_t (box) or (y_{t+1} − y_t)/√2 (difference): the row's sign against it
    sign = np.where(two, np.where(pos2 > pos, np.sign(A.data[second]), np.sign(coef)), np.sign(coef))
    where = np.where(two, L + np.minimum(pos, pos2), pos)
    chain = slot[chain_of[first[row_ids]]]
    lo, hi = rows.lower[:, 0].cpu().numpy()[row_ids], rows.upper[:, 0].cpu().numpy()[row_ids]
    lo, hi = np.where(sign > 0, lo, -hi), np.where(sign > 0, hi, -lo)
    lower, upper = np.full((m, k), -np.inf), np.full((m, k), np.inf)
    np.maximum.at(lower, (where, chain), lo)
    np.minimum.at(upper, (where, chain), hi)
    row_lower, row_upper = np.full((m, k), -1), np.full((m, k), -1)
    sign_lower, sign_upper = np.ones((m, k)), np.ones((m, k))
    sets_lower = lo == lower[where, chain]
    sets_upper = hi == upper[where, chain]
    row_lower[where[sets_lower], chain[sets_lower]] = row_ids[sets_lower]
    sign_lower[where[sets_lower], chain[sets_lower]] = sign[sets_lower]
    row_upper[where[sets_upper], chain[sets_upper]] = row_ids[sets_upper]
    sign_upper[where[sets_upper], chain[sets_upper]] = sign[sets_upper]
    lower, upper = np.maximum(lower, -HUGE), np.minimum(upper, HUGE)
    device = rows.lower.device
    return Part(_path(L, rows, device), torch.from_numpy(columns).to(device),
                *(torch.from_numpy(a).to(device) for a in (lower, upper, row_lower, row_upper,
                                                           sign_lower, sign_upper)))


def _path(L: int, rows: ScaledRows, device: torch.device) -> ScaledRows:
    """Unit-norm rows y_t (t < L) and (y_{t+1} − y_t)/√2 (t < L − 1) over L columns."""
    t = torch.arange(L - 1)
    r = torch.cat([torch.arange(L), L + t, L + t])
    c = torch.cat([torch.arange(L), t, t + 1])
    v = torch.cat([torch.ones(L), torch.full((L - 1,), -math.sqrt(0.5)), torch.full((L - 1,), math.sqrt(0.5))])
    m = 2 * L - 1
    A64, AT64, A32, AT32 = csr_pair(r, c, v.double(), (m, L), device)
    unbounded = torch.full((m, 1), math.inf, dtype=torch.float64, device=device)
    return ScaledRows(A64, AT64, A32, AT32, -unbounded, unbounded, torch.full((m,), -1, device=device),
                      torch.ones(m, dtype=torch.float64, device=device), n_rows=rows.n_rows, n_columns=L,
                      row_norms=rows.row_norms, path=True)
