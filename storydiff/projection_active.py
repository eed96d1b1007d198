"""A warm start's finish by the primal–dual active-set method (Hintermüller, Ito & Kunisch 2003).

Between sampler steps a scene moves little, and so does the set of rows that hold it:
the previous call's multipliers name the active rows S almost exactly. With S known the
projection is one linear solve — y = x − Aₛᵀλ with Aₛ y = bₛ, i.e. `(Aₛ Aₛᵀ) λ = Aₛ x − bₛ`
— with no penalty to raise and no multiplier loop, which is what costs the augmented
Lagrangian its 10-12 Newton steps on a warm start (`projection_alm`). Each round accepts
the samples whose answer meets the same certificate as the augmented Lagrangian's
(`active_set`), re-guesses S for the others from the complementarity
function λ + (A y − bound) and solves for the rest by conjugate gradients in float32 on
the masked rows (a correction to the float64 multipliers: iterative refinement). Where
"never" rows, ranges and display rules meet at 0 (degenerate vertices) the guesses overshoot
on the way — the violation rises for a round or two, then the sample settles — so a sample
goes back to the augmented Lagrangian from its warm start only once its violation exceeds
the one it came in with (the guess blew up on rows that cannot all hold at once) or after
`max_rounds`. Bundled scenes settle in 2-4 rounds, the synthetic 8 × 24 scene nine samples
in ten within 6 (benchmarks/RESULTS.md, Projection).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .projection_cg import conjugate_gradients, put_columns, take_columns
from .projection_rows import ScaledRows


@dataclass
class ActiveSetResult:
    """Per column: y and multipliers where `solved`; elsewhere the inputs, untouched."""

    y: torch.Tensor         # [n, b] float64
    dual: torch.Tensor      # [m, b] float64
    solved: torch.Tensor    # [b] bool
    rounds: torch.Tensor    # [b] active-set solves taken, settled or not
    cg: torch.Tensor        # [b] conjugate-gradient steps taken


# A ridge on the active rows' matrix: where they are linearly dependent (a "never" row, a range and a
# display rule meeting at 0) it is singular, and plain CG would divide by p·Mp = 0.
RIDGE = 1e-5


class _ActiveRowsMatrix:
    """`diag(M) A Aᵀ diag(M)` per column in float32, M = 1 on the rows guessed active."""

    def __init__(self, rows: ScaledRows, mask: torch.Tensor):
        self.A, self.AT, self.mask = rows.A32, rows.AT32, mask
        self.t = torch.empty(rows.n_columns, mask.shape[1], dtype=torch.float32, device=mask.device)

    def __call__(self, p: torch.Tensor, out: torch.Tensor) -> None:
        torch.addmm(self.t, self.AT, p, beta=0, out=self.t)
        torch.addmm(out, self.A, self.t, beta=0, out=out)
        out.mul_(self.mask).add_(p, alpha=RIDGE)

    def keep(self, index: torch.Tensor) -> None:
        self.mask = take_columns(self.mask, index)
        self.t = torch.empty(self.t.shape[0], index.numel(), dtype=self.t.dtype, device=self.t.device)


def active_set(rows: ScaledRows, bounds: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, mu: torch.Tensor,
               target: float, max_rounds: int, forcing: float, max_cg: int) -> ActiveSetResult:
    """Project the columns of `x` `[n, b]` starting from the multipliers `mu` `[m, b]` (scaled rows).

    With y = x − Aᵀλ (stationarity by construction), a column is accepted when every row is
    within `target` of its bounds and the multipliers that press a bound their row is not
    at (a wrong sign, or a row that has left it) sum to at most `target`/2: dropping them,
    y is the exact projection of a point that close to x onto the set with bounds moved by
    at most `target` — the augmented Lagrangian's own certificate (`AlmChunk.run`).
    """
    lower, upper = bounds
    b = x.shape[1]
    out = ActiveSetResult(y=x.clone(), dual=mu.clone(), solved=torch.zeros(b, dtype=torch.bool, device=x.device),
                          rounds=torch.zeros(b, dtype=torch.long, device=x.device),
                          cg=torch.zeros(b, dtype=torch.long, device=x.device))
    live = torch.arange(b, device=x.device)
    lam = mu.clone()
    per_column = lower.shape[1] > 1
    for round_ in range(max_rounds + 1):
        y = torch.addmm(x, rows.AT64, lam, alpha=-1.0)
        Ay = torch.sparse.mm(rows.A64, y)
        over, under = Ay - upper, Ay - lower
        violation = torch.maximum(over.amax(dim=0), under.amin(dim=0).neg()).clamp_min(0)
        # multipliers that press a bound the row is not at (or has not): what y may be off by, at most
        off = torch.where(lam > 0, over < -target, torch.where(lam < 0, under > target, False))
        stray = (lam.abs() * off).sum(dim=0)
        accept = (violation <= target) & (stray <= 0.5 * target)
        # a guess that left the sample further out than it came in (it blew up on rows that cannot all
        # hold at once) goes to the augmented Lagrangian; a smaller rise on the way is common and passes
        if round_ == 0:
            start = violation
        give_up = ~accept & ~(violation <= start)
        if bool(accept.any()):
            done = torch.nonzero(accept).squeeze(1)
            cols = live[done]
            put_columns(out.y, cols, take_columns(y, done))
            put_columns(out.dual, cols, take_columns(lam, done).mul_(take_columns(off, done).logical_not_()))
            out.solved[cols] = True
        keep = torch.nonzero(~accept & ~give_up).squeeze(1)
        if keep.numel() == 0 or round_ == max_rounds:
            break
        if keep.numel() < live.numel():
            live = live[keep]
            x, lam, over, under = (take_columns(t, keep) for t in (x, lam, over, under))
            start = start[keep]
            if per_column:
                lower, upper = take_columns(lower, keep), take_columns(upper, keep)
        # S: rows whose complementarity function λ + c(A y − bound), c = 1 on unit rows, points outward
        at_upper, at_lower = (lam + over) > 0, (lam + under) < 0
        lam = lam * (at_upper | at_lower)
        y = torch.addmm(x, rows.AT64, lam, alpha=-1.0)
        Ay = torch.sparse.mm(rows.A64, y)
        residual = torch.where(at_upper, Ay - upper, torch.where(at_lower, Ay - lower, 0.0))
        steps = torch.zeros(live.numel(), dtype=torch.long, device=x.device)
        delta, _ = conjugate_gradients(_ActiveRowsMatrix(rows, (at_upper | at_lower).to(torch.float32)),
                                       residual.to(torch.float32), forcing, max_cg, steps)
        lam = lam + delta.to(torch.float64)
        out.cg[live] += steps
        out.rounds[live] += 1
    return out
