"""The finish of a projection by the primal–dual active-set method (Hintermüller, Ito & Kunisch 2003).

Between sampler steps a scene moves little, and so does the set of rows that hold it:
the previous call's multipliers name the active rows S almost exactly — as do a cold
start's once its augmented Lagrangian is within `Settings.cold_handoff`. With S known the
projection is one linear solve — y = x − Aₛᵀλ with Aₛ y = bₛ, i.e. `(Aₛ Aₛᵀ) λ = Aₛ x − bₛ`
— with no penalty to raise and no multiplier loop, which is what costs the augmented
Lagrangian its 10-12 Newton steps on a warm start (`projection_alm`). Each round accepts
the samples whose answer meets the same certificate as the augmented Lagrangian's
(`active_set`), re-guesses S for the others from the complementarity
function λ + (A y − bound) and solves for the rest. The one-variable rows of S fix their
variables, so the solve eliminates them and runs conjugate gradients in float32 on S's other
rows over the free variables (a correction to the float64 multipliers: iterative refinement) —
on those rows alone where they are few (`_PackedRows`: a sixth of a large scene's rows). Where
"never" rows, ranges and display rules meet at 0 (degenerate vertices) the guesses overshoot
on the way — the violation rises for a round or two, then the sample settles — so a sample
goes back to the augmented Lagrangian from its warm start only once its violation exceeds
ten times the one it came in with (the guess blew up on rows that cannot all hold at once) or after
`max_rounds` (`projection._solve` gathers those of every chunk into one batch). Bundled
scenes settle in 2-4 rounds, the synthetic 8 × 24 scene 98 samples in 100 within 6
(benchmarks/RESULTS.md, Projection).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .projection_alm import Settings
from .projection_cg import BufferPool, conjugate_gradients, copy_columns, over_rows, put_columns, take_columns
from .projection_rows import ScaledRows


@dataclass
class ActiveSetResult:
    """Per column: y and multipliers where `solved`; elsewhere what `start` put there."""

    y: torch.Tensor         # [n, b] float64
    dual: torch.Tensor      # [m, b] float64
    solved: torch.Tensor    # [b] bool
    rounds: torch.Tensor    # [b] active-set solves taken, settled or not
    cg: torch.Tensor        # [b] conjugate-gradient steps taken
    cold: torch.Tensor      # [b] bool: started from zero multipliers (`_Rounds.violation_at_x`)

    @classmethod
    def start(cls, x: torch.Tensor, mu: torch.Tensor, into: tuple[torch.Tensor, torch.Tensor] | None) -> ActiveSetResult:
        """Nothing solved, no rounds taken; y and multipliers written into `into` (`[n, b]`, `[m, b]`, left as
        they are where nothing settles), else into copies of the inputs.

        `projection._solve` passes its answer's columns: the chain solver writes there and needs no buffers of
        its own, nor a copy of them into the answer (with the inputs read in place: a tenth of a warm call on
        the synthetic 8 × 24 scene, two threads). `active_set` passes blocks of its own and copies them over
        at the end.
        """
        b, device = x.shape[1], x.device
        none = torch.zeros(b, dtype=torch.bool, device=device)
        steps = torch.zeros(b, dtype=torch.long, device=device)
        y, dual = into if into is not None else (x.clone(), mu.clone())
        return cls(y=y, dual=dual, solved=none, rounds=steps, cg=steps.clone(), cold=none.clone())


# A ridge on the active rows' matrix: where they are linearly dependent (a "never" row, a range and a
# display rule meeting at 0) it is singular, and plain CG would divide by p·Mp = 0.
RIDGE = 1e-5
# ... on the first solve: a ridge leaves the rows of S off their bounds by ridge × the correction, which
# is ~1e-2 on a warm start; at 1e-5 a right guess would still miss the target (1e-7) and take a second
# round (measured on chains, before they had their own solver: two in three of the synthetic 8 × 24
# scene; one in six at 1e-6). Later corrections are small, and the larger ridge keeps the general part's
# nearly dependent rows better conditioned.
FIRST_RIDGE = 1e-6


# Pack the active rows (`_PackedRows`) where the column with the most has at most this share of all rows:
# the synthetic 8 × 24 scene's general part warm has 1/6 of its rows active (conjugate gradients 29%
# faster packed); where 2/5 are (chains), packing and unpacking cost more than they save.
PACK_SHARE = 0.25
# ... and where the vectors hold at least this many entries: below it every operation costs its call,
# not its length, and packing only adds calls (bundled scenes at batch 1: 13-40% slower packed).
PACK_ENTRIES = 2**16
# A sample goes back to the augmented Lagrangian once a guess leaves it this many times further out than it
# came in: rises of 2-5x on the way to a degenerate vertex are common and settle a round later (synthetic
# 8 × 24 warm, batch 256: 15 samples sent back at 1x, 4 at 10x, 3 at 100x, those then after 5-6 rounds).
GIVE_UP_GROWTH = 10.0


class _MaskedRows:
    """`diag(M) A diag(F) Aᵀ diag(M)` per column in float32: M = 1 on the active rows, F on the free
    variables; vectors are `[m, b]`, `active` a 0/1 float mask."""

    def __init__(self, A: torch.Tensor, AT: torch.Tensor, active: torch.Tensor, free: torch.Tensor, ridge: float):
        self.A, self.AT, self.mask, self.free, self.ridge = A, AT, active.to(torch.float32), free, ridge
        self.t = torch.empty(AT.shape[0], active.shape[1], dtype=torch.float32, device=active.device)

    def pack(self, residual: torch.Tensor) -> torch.Tensor:
        """The right-hand side in this layout from a `[m, b]` float64 residual that is 0 off the active rows."""
        return residual.to(torch.float32)

    def unpack(self, delta: torch.Tensor) -> torch.Tensor:
        """A solution in this layout as `[m, b]` float64, 0 off the active rows."""
        return delta.to(torch.float64)

    def __call__(self, p: torch.Tensor, out: torch.Tensor) -> None:
        torch.addmm(self.t, self.AT, p, beta=0, out=self.t)
        self.t.mul_(self.free)
        torch.addmm(out, self.A, self.t, beta=0, out=out)
        out.mul_(self.mask).add_(p, alpha=self.ridge)

    def keep(self, index: torch.Tensor) -> None:
        self.mask, self.free = take_columns(self.mask, index), take_columns(self.free, index)
        self.t = torch.empty(self.t.shape[0], index.numel(), dtype=self.t.dtype, device=self.t.device)


class _PackedRows:
    """`A_S diag(F) A_Sᵀ` per column in float32 on vectors that hold each column's active rows S alone.

    Each column's active rows are packed at the top of `[K, b]` vectors (K the most any column
    has; `rows_of` names each entry's row, `m` for padding), so the conjugate-gradient
    arithmetic shrinks with S. Each product scatters into full-length rows, multiplies by the
    shared sparse matrices and gathers back; the full-length buffers keep a last row of zeros
    that padding writes to and reads from. They are the thread's (`BufferPool`), as is what
    `unpack` returns: valid until its next solve.
    """

    def __init__(self, A: torch.Tensor, AT: torch.Tensor, rows_of: torch.Tensor, free: torch.Tensor, ridge: float):
        self.A, self.AT, self.rows_of, self.free, self.ridge = A, AT, rows_of, free, ridge
        self.pool = BufferPool(rows_of.device, rows_of.shape[1], "packed rows")
        self._buffers(rows_of.shape[1])
        # every column's positions and shape, for pack and unpack, whatever `keep` drops
        self.home, self.shape = self.flat, rows_of.shape

    def _buffers(self, b: int) -> None:
        m, n = self.A.shape
        # flat positions in [m + 1, b]: a 1-D index_select runs 3x faster than a 2-D gather, and a 1-D
        # scatter_ 2.5x faster than index_copy_ (float32, 81,000 of 500,000 entries); padding writes zeros
        self.flat = (self.rows_of * b + torch.arange(b, device=self.rows_of.device)).view(-1)
        self.pool.b = b
        self.full_p = self.pool("p", m + 1, torch.float32).zero_()
        self.full_q = self.pool("q", m + 1, torch.float32).zero_()
        self.t = self.pool("t", n, torch.float32)

    def _full(self, values: torch.Tensor | None) -> torch.Tensor:
        """`[m + 1, b]` float64 in the pool: `values` `[m, b]` over a last row of zeros, or all zeros."""
        m, b = self.A.shape[0], self.shape[1]
        self.pool.b = b
        full = self.pool("full", m + 1, torch.float64)
        if values is None:
            return full.zero_()
        full[:m] = values
        full[m].zero_()
        return full

    def pack(self, residual: torch.Tensor) -> torch.Tensor:
        return self._full(residual).view(-1).index_select(0, self.home).view(self.shape).to(torch.float32)

    def unpack(self, delta: torch.Tensor) -> torch.Tensor:
        full = self._full(None).view(-1)  # padding lands in the last row, dropped
        return full.scatter_(0, self.home, delta.view(-1).to(torch.float64)).view(-1, self.shape[1])[:-1]

    def __call__(self, p: torch.Tensor, out: torch.Tensor) -> None:
        self.full_p.view(-1).scatter_(0, self.flat, p.view(-1))
        torch.addmm(self.t, self.AT, self.full_p[:-1], beta=0, out=self.t)
        self.t.mul_(self.free)
        torch.addmm(self.full_q[:-1], self.A, self.t, beta=0, out=self.full_q[:-1])
        torch.index_select(self.full_q.view(-1), 0, self.flat, out=out.view(-1))
        out.add_(p, alpha=self.ridge)

    def keep(self, index: torch.Tensor) -> None:
        self.rows_of, self.free = self.rows_of.index_select(1, index), take_columns(self.free, index)
        self._buffers(index.numel())


def _active_rows_matrix(A: torch.Tensor, AT: torch.Tensor, active: torch.Tensor, free: torch.Tensor,
                        ridge: float) -> _MaskedRows | _PackedRows:
    """The active rows' matrix in the layout that pays for this share of active rows (`PACK_SHARE`)."""
    m, b = active.shape
    count = active.sum(dim=0).long()
    most = int(count.max())
    if most > PACK_SHARE * m or m * b < PACK_ENTRIES:
        return _MaskedRows(A, AT, active, free, ridge)
    column, row = torch.nonzero(active.T > 0, as_tuple=True)  # of a boolean: 25% faster than of the floats
    start = torch.cumsum(count, 0) - count
    rows_of = torch.full((most, b), m, dtype=torch.long, device=active.device)
    rows_of[torch.arange(row.numel(), device=row.device) - start[column], column] = row
    return _PackedRows(A, AT, rows_of, free, ridge)


class _Kept:
    """A `_Rounds` buffer that `keep` carries over: `[variables or rows, live columns]` float64."""

    def __init__(self, name: str, variables: bool = False):
        self.name, self.variables = name, variables

    def __get__(self, work: _Rounds, owner: type) -> torch.Tensor:
        return work._buf(self.name, work.rows.n_columns if self.variables else work.rows.m)


class _Rounds:
    """The float64 work of the active-set rounds in reused `[rows, live columns]` buffers (`BufferPool`)."""

    def __init__(self, rows: ScaledRows, bounds: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor,
                 mu: torch.Tensor):
        self.rows, (self.lower, self.upper) = rows, bounds
        self.pool = BufferPool(x.device, x.shape[1], "active set")
        self._buf("x", rows.n_columns).copy_(x)
        self._buf("lam", rows.m).copy_(mu)

    def _buf(self, name: str, size: int) -> torch.Tensor:
        return self.pool(name, size, torch.float64)

    x = _Kept("x", variables=True)
    lam = _Kept("lam")
    at_upper = _Kept("at upper")  # 1 on the rows of S held at their upper bound (`guess_active`), else 0
    at_lower = _Kept("at lower")

    def residuals(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """y = x − Aᵀλ and the rows' distances past their bounds: (y, A y − upper, A y − lower)."""
        y = torch.addmm(self.x, self.rows.AT64, self.lam, alpha=-1.0, out=self._buf("y", self.rows.n_columns))
        return (y, *self._past_bounds(y))

    def _past_bounds(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`A y − upper` and `A y − lower`, in the rounds' buffers."""
        over, under = self._buf("over", self.rows.m), self._buf("under", self.rows.m)
        torch.addmm(under, self.rows.A64, y, beta=0, out=under)
        torch.sub(under, self.upper, out=over)
        return over, under.sub_(self.lower)

    def violation_at_x(self) -> torch.Tensor:
        """Per column, how far x itself is past the bounds (in the residuals' buffers, which it overwrites).

        A sampler's last step can land its estimate almost inside the set (DDIM's: 0.01 out) after
        steps far outside (0.5): the previous multipliers then push it 0.3 out, and the rounds cycle
        until the augmented Lagrangian, itself slowed by the previous penalty, takes over (the-wake
        at batch 1: 40 ms where a cold start takes 11). From zero multipliers the guess is the rows x
        breaks, nearly right for a point nearly inside: `active_set` starts there the columns whose
        warm start is further out than this.
        """
        return worst_violation(*self._past_bounds(self.x))

    def keep(self, index: torch.Tensor) -> None:
        """Go on with the listed columns only: their x, multipliers and guess."""
        names = ("x", "lam", "at_upper", "at_lower")
        kept = {name: take_columns(getattr(self, name), index) for name in names}
        self.pool.b = index.numel()
        for name, values in kept.items():
            getattr(self, name).copy_(values)
        if self.lower.shape[1] > 1:
            self.lower, self.upper = take_columns(self.lower, index), take_columns(self.upper, index)

    def solve(self, forcing: float | torch.Tensor, floor: float, ridge: float, max_cg: int,
              steps: torch.Tensor) -> None:
        """λ ← the multipliers of the projection onto `A_S y = bound_S` (S: `at_upper` and `at_lower`).

        The one-variable rows of S (ranges, "never", pins) fix their variables at their bounds, so
        they are eliminated: conjugate gradients run on S's other rows over the free variables alone
        (the Schur complement `A_S,free A_S,freeᵀ`, on half the rows), and the
        fixed variables' multipliers follow in closed form, shared where two rows hold one variable.
        Solved for the correction to λ in float32 (iterative refinement: residuals and multipliers
        stay in float64), to a relative residual `forcing` (per column if a `[1, b]` tensor), or to
        `floor`: where S is right, what the rows of S are then off their bounds by.
        The bounds must be finite (`projection_parts.HUGE` where a row has none), as 0/1 masks multiply them.
        """
        at_upper, at_lower = self.at_upper, self.at_lower
        active = torch.add(at_upper, at_lower, out=self._buf("active", self.rows.m))
        lam = self.lam.mul_(active)
        if not bool(active.amax() > 0):  # `any` of a float tensor converts it to a fresh boolean one first
            return
        kinds, n = self.rows.kinds(), self.rows.n_columns
        _, over, under = self.residuals()
        residual = over.mul_(at_upper).addcmul_(under, at_lower)
        # each fixed variable's step onto its bound, d = y − bound (the mean where two rows of S hold it)
        held = active.index_select(0, kinds.single)
        count = self._buf("count", n).zero_().index_add_(0, kinds.single_column, held)
        free = torch.eq(count, 0, out=self.pool("free", n, torch.float32))
        count.clamp_min_(1)
        d = self._buf("d", n).zero_().index_add_(0, kinds.single_column,
                                                 residual.index_select(0, kinds.single).mul_(kinds.single_sign))
        d.div_(count)
        multi_active = active.index_select(0, kinds.multi)
        rhs = torch.index_select(residual, 0, kinds.multi, out=self._buf("rhs", kinds.multi.numel()))
        torch.addmm(rhs, kinds.A64, d, alpha=-1.0, out=rhs).mul_(multi_active)
        matrix = _active_rows_matrix(kinds.A, kinds.AT, multi_active, free, ridge)
        delta, _ = conjugate_gradients(matrix, matrix.pack(rhs), forcing, max_cg, steps, floor)
        delta = matrix.unpack(delta)
        lam.index_add_(0, kinds.multi, delta)
        # the fixed variables' multipliers take what keeps them at their bounds: Σ sᵢ Δλᵢ = d − (A_freeᵀ δ)
        share = torch.addmm(d, kinds.AT64, delta, alpha=-1.0).div_(count)
        lam.index_add_(0, kinds.single, share.index_select(0, kinds.single_column).mul_(kinds.single_sign).mul_(held))


def guess_active(lam: torch.Tensor, over: torch.Tensor, under: torch.Tensor, at_upper: torch.Tensor,
                 at_lower: torch.Tensor) -> None:
    """S: the rows whose complementarity function λ + c(A y − bound), c = 1 on unit rows, points outward,
    written into `at_upper` and `at_lower` as 0/1 floats (disjoint, as upper ≥ lower).

    Floats, not booleans: on CPU each boolean mask a solve multiplies by is first converted to a fresh
    float tensor (torch 2.13; on the synthetic 8 × 24 scene warm, half a gigabyte per call).
    """
    torch.add(lam, over, out=at_upper).gt_(0)  # an in-place comparison writes 1.0 or 0.0: one pass
    torch.add(lam, under, out=at_lower).lt_(0)


def pressing_off(lam: torch.Tensor, over: torch.Tensor, under: torch.Tensor, target: float) -> torch.Tensor:
    """The part of each multiplier that presses a bound its row is not at (or has not), signed as `lam`:
    what y may be off by, at most. Overwrites `over` and `under` (`A y − upper`, `A y − lower`).

    Float arithmetic throughout: on CPU a boolean mask's `where` or `masked_fill_` costs as much as
    10-15 float passes (torch 2.13). In place in `over` and `under`: a fresh `[rows, b]` temporary costs
    page faults on CPU (a 0/1 mask commutes with the clamp, so λ·mask clamped is the clamped λ masked).
    """
    not_at_upper = over.lt_(-target)  # 1 where A y < upper − target
    not_at_lower = under.gt_(target)
    pressing_lower = not_at_lower.mul_(lam).clamp_max_(0)
    return not_at_upper.mul_(lam).clamp_min_(0).add_(pressing_lower)


def settled(out: ActiveSetResult, live: torch.Tensor, y: torch.Tensor, lam: torch.Tensor, over: torch.Tensor,
            under: torch.Tensor, violation: torch.Tensor, target: float) -> torch.Tensor:
    """Which live columns meet the certificate (`active_set`); writes their y and multipliers into `out`.

    Only columns within `target` of every bound can, so the multipliers are checked on those alone.
    """
    accept = torch.zeros_like(violation, dtype=torch.bool)
    close = torch.nonzero(violation <= target).squeeze(1)
    if close.numel() == 0:
        return accept
    lam = take_columns(lam, close)
    off = pressing_off(lam, take_columns(over, close), take_columns(under, close), target)
    lam.sub_(off)  # the answer's multipliers, where it settles
    settled = off.abs_().sum(dim=0) <= 0.5 * target
    done = torch.nonzero(settled).squeeze(1)
    accept[close[done]] = True
    cols = live[close[done]]
    put_columns(out.y, cols, take_columns(y, close[done]))
    put_columns(out.dual, cols, take_columns(lam, done))
    out.solved[cols] = True
    return accept


def worst_violation(over: torch.Tensor, under: torch.Tensor) -> torch.Tensor:
    """Per column, how far the rows are past their bounds at most (0 inside), from `A y − upper`, `A y − lower`."""
    return torch.maximum(over_rows(torch.amax, over), over_rows(torch.amin, under).neg_()).clamp_min_(0)


def active_set(rows: ScaledRows, bounds: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, mu: torch.Tensor,
               target: float, settings: Settings,
               into: tuple[torch.Tensor, torch.Tensor] | None = None) -> ActiveSetResult:
    """Project the columns of `x` `[n, b]` starting from the multipliers `mu` `[m, b]` (scaled rows); the
    settled columns' y and multipliers go into `into` if given (`ActiveSetResult.start`), else into the
    thread's buffers (`BufferPool`), valid until its next call.

    With y = x − Aᵀλ (stationarity by construction), a column is accepted when every row is
    within `target` of its bounds and the multipliers that press a bound their row is not
    at (a wrong sign, or a row that has left it) sum to at most `target`/2: dropping them,
    y is the exact projection of a point that close to x onto the set with bounds moved by
    at most `target` — the augmented Lagrangian's own certificate (`AlmChunk.run`).
    The first solve, from the previous call's multipliers, only has to find the next guess
    of the active rows where they changed, so there it runs to `settings.active_first_forcing`;
    the others run to `settings.active_forcing` or until the rows they hold are within `target`/2.
    Columns whose previous multipliers leave them further out than x start from zero (`_Rounds.violation_at_x`).
    """
    # settled columns are written as they settle into contiguous blocks, then into `into` at the end
    # (`copy_columns`): scattered into its column windows they cost 5x as much
    answer = BufferPool(x.device, x.shape[1], "active set answer")
    y0, dual0 = answer("y", rows.n_columns, torch.float64), answer("dual", rows.m, torch.float64)
    if into is None:  # unsettled columns keep their start
        y0.copy_(x)
        dual0.copy_(mu)
    out = ActiveSetResult.start(x, mu, (y0, dual0))
    live = torch.arange(x.shape[1], device=x.device)
    work = _Rounds(rows, bounds, x, mu)
    max_rounds = settings.active_rounds
    alone = work.violation_at_x()
    for round_ in range(max_rounds + 1):
        y, over, under = work.residuals()
        lam = work.lam
        violation = worst_violation(over, under)
        if round_ == 0 and bool((cold := violation > alone).any()):
            out.cold = cold
            work.lam[:, cold] = 0.0
            y, over, under = work.residuals()
            lam = work.lam
            violation = worst_violation(over, under)
        accept = settled(out, live, y, lam, over, under, violation, target)
        # a guess that left the sample far further out than it came in (it blew up on rows that cannot
        # all hold at once) goes to the augmented Lagrangian; a smaller rise on the way is common and passes
        if round_ == 0:
            start = violation * GIVE_UP_GROWTH
        give_up = ~accept & ~(violation <= start)
        keep = torch.nonzero(~accept & ~give_up).squeeze(1)
        if keep.numel() == 0 or round_ == max_rounds:
            break
        guess_active(lam, over, under, work.at_upper, work.at_lower)
        if keep.numel() < live.numel():
            live, start = live[keep], start[keep]
            work.keep(keep)
        steps = torch.zeros(live.numel(), dtype=torch.long, device=x.device)
        forcing, ridge = settings.active_forcing, RIDGE
        if round_ == 0:  # tight only where the guess is the rows the previous multipliers held
            same = over_rows(torch.all, (work.at_upper != work.at_lower) == (work.lam != 0)).unsqueeze(0)
            forcing, ridge = torch.where(same, forcing, settings.active_first_forcing), FIRST_RIDGE
        work.solve(forcing, 0.5 * target, ridge, settings.max_cg, steps)
        out.cg[live] += steps
        out.rounds[live] += 1
    if into is not None:
        for block, window in zip((out.y, out.dual), into, strict=True):
            copy_columns(window, block, out.solved)
        out.y, out.dual = into
    return out
