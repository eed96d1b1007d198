"""Chain parts projected by an active-set method whose every solve is exact and closed-form.

A chain (`projection_parts`) is one variable across L beats: a box at each beat (its range,
pins) and a band on each step to the next beat (volatility). With the active rows S guessed,
the projection onto `A_S y = b_S` needs no linear solver. The active steps link beats into
segments; a segment's shape is fixed by the step bounds it holds, its level by a box it
touches or, with none, by the mean of x − shape over it (least squares along a line). The
multipliers then follow from running sums of x − y along the segment. So a round of the
primal–dual active-set method (Hintermüller, Ito & Kunisch 2003) is a few multiply-adds per
beat over `[chains]` vectors, where the general method (`projection_active`) runs conjugate
gradients on the 2L − 1 rows.

Solves are exact, so a sample is done as soon as its guess is right: the rows it breaks and the
multipliers with the wrong sign are the whole certificate (`pressing_off`, the one of
`projection_active.active_set`). A guess that holds two boxes in one segment fixes its level
twice (a degenerate vertex); the last box sets it, and if the others then break, the next guess
drops or keeps them like any other row. The method is not globally convergent here (the path's
matrix is not an M-matrix): from the previous call's multipliers 99.8% of the synthetic 8 × 24
scene's chains settle, 90% in one solve; from cold three in four, the rest cycle. A sample not
settled within `max_rounds` is left to the augmented Lagrangian (`projection._solve`).

Rows are those of `projection_parts._path`: boxes y_t (t < L), then steps (y_{t+1} − y_t)/√2.
"""
from __future__ import annotations

import math

import torch

from .projection_active import ActiveSetResult, guess_active, pressing_off, worst_violation
from .projection_cg import BufferPool, put_columns, take_columns

SQRT2 = math.sqrt(2.0)


class _Chains:
    """The rounds' work for the live columns, in buffers reused from round to round (`BufferPool`)."""

    def __init__(self, bounds: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor):
        self.L, b = x.shape
        self.m = 2 * self.L - 1
        self.pool = BufferPool(x.device, b, "chains")
        self.lower, self.upper = bounds  # finite (`projection_parts.HUGE`), so that 0/1 masks can multiply them
        self.buf("x", self.L).copy_(x)

    def buf(self, name: str, rows: int) -> torch.Tensor:
        return self.pool(name, rows, torch.float64)

    def keep(self, index: torch.Tensor) -> None:
        """Go on with the listed columns only: their x, their guess and their bounds."""
        sizes = {"x": self.L, "at_upper": self.m, "at_lower": self.m}
        kept = {name: take_columns(self.buf(name, rows), index) for name, rows in sizes.items()}
        self.pool.b = index.numel()
        for name, values in kept.items():
            self.buf(name, sizes[name]).copy_(values)
        if self.lower.shape[1] > 1:  # one chain's bounds for every column need no taking
            self.lower, self.upper = take_columns(self.lower, index), take_columns(self.upper, index)

    def residuals(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`A y − upper` and `A y − lower` of the path rows: boxes y_t, then steps (y_{t+1} − y_t)/√2."""
        L, over, under = self.L, self.buf("over", self.m), self.buf("under", self.m)
        under[:L] = y
        torch.sub(y[1:], y[:-1], out=under[L:]).div_(SQRT2)
        torch.sub(under, self.upper, out=over)
        return over, under.sub_(self.lower)

    def start(self, mu: torch.Tensor) -> torch.Tensor:
        """y = x − Aᵀμ, the answer the previous multipliers give."""
        L, y = self.L, self.buf("y", self.L)
        torch.sub(self.buf("x", L), mu[:L], out=y)
        step = torch.div(mu[L:], SQRT2, out=self.buf("step", L - 1))
        y[1:] -= step
        y[:-1] += step
        return y

    def guess(self, lam: torch.Tensor, over: torch.Tensor, under: torch.Tensor) -> None:
        """S: the rows whose complementarity function λ + (A y − bound) points outward (`guess_active`)."""
        guess_active(lam, over, under, self.buf("at_upper", self.m), self.buf("at_lower", self.m))

    def solve(self, into: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """y and its multipliers `[2L − 1, b]` for the projection onto `A_S y = bound_S` (`guess`), in `into`
        if given, else in the rounds' buffers.

        Along the beats, each segment's shape (offsets from its first beat), then its level: a box's
        it touches (the last), else the mean of x − offset; that level spread back over the segment
        gives y; then the sum of x − y to the segment's end, and the segment's total. With D_t the
        multiplier of step t over √2, stationarity x_t − y_t = λ_t + D_{t−1} − D_t gives D_t =
        Σ_{k>t} (x − y)_k (to the segment's end) after its last box q, that minus the segment's total
        before it, and λ_q the total: a segment without a box has total 0, its mean level makes it so.

        Each of those is a linear recurrence s_t = a_t s_{t−1} + c_t, one fused multiply-add per beat
        over `[chains]`; masks are 0/1 floats: on CPU a boolean `where` over such a vector costs as much as
        14 float additions (torch 2.13).
        """
        L, m, b = self.L, self.m, self.pool.b
        at_upper, at_lower, lower, upper = self.buf("at_upper", m), self.buf("at_lower", m), self.lower, self.upper
        x, (y, lam) = self.buf("x", L), into or (self.buf("y", L), self.buf("lam", m))
        box = torch.add(at_upper[:L], at_lower[:L], out=self.buf("box", L))
        link = torch.add(at_upper[L:], at_lower[L:], out=self.buf("link", L - 1))  # 1 where beat t is joined to beat t + 1
        unlinked = torch.eq(link, 0.0, out=self.buf("unlinked", L - 1))  # 1 − link in one pass

        offset = self.buf("offset", L)
        offset[0].zero_()
        torch.mul(upper[L:], at_upper[L:], out=offset[1:]).addcmul_(lower[L:], at_lower[L:]).mul_(SQRT2)
        for t in range(1, L):
            offset[t].addcmul_(link[t - 1], offset[t - 1])

        # per segment so far: Σ (x − offset) and the count under link; the last box's level and whether
        # there is one under "linked, and no box here"
        ahead = self.pool("ahead", 4 * L, torch.float64).view(L, 4, b)
        torch.sub(x, offset, out=ahead[:, 0])
        ahead[:, 1].fill_(1.0)
        torch.mul(upper[:L], at_upper[:L], out=ahead[:, 2]).addcmul_(lower[:L], at_lower[:L])
        ahead[:, 2].sub_(offset).mul_(box)
        ahead[:, 3].copy_(box)
        no_box = torch.addcmul(link, box[1:], link, value=-1.0, out=self.buf("no_box", L - 1))
        for t in range(1, L):
            ahead[t, :2].addcmul_(link[t - 1], ahead[t - 1, :2])
            ahead[t, 2:].addcmul_(no_box[t - 1], ahead[t - 1, 2:])
        level = ahead[:, 0].div_(ahead[:, 1]).lerp_(ahead[:, 2], ahead[:, 3])  # read before `back` takes its place

        y[L - 1] = level[L - 1]  # the segment's level, from its last beat back
        torch.mul(unlinked, level[:-1], out=y[:-1])
        for t in range(L - 2, -1, -1):
            y[t].addcmul_(link[t], y[t + 1])
        y.add_(offset)

        back = ahead[:, :2]  # Σ (x − y) to the segment's end; boxes beyond t in the segment
        torch.sub(x, y, out=back[:, 0])
        torch.mul(link, box[1:], out=back[:-1, 1])
        back[-1, 1].zero_()
        for t in range(L - 2, -1, -1):
            back[t].addcmul_(link[t], back[t + 1])
        rest, after = back[:, 0], back[:, 1].sign_()
        segment = ahead[:, 2]  # the segment's total of x − y, at each of its beats
        segment[0] = rest[0]
        torch.mul(unlinked, rest[1:], out=segment[1:])
        for t in range(1, L):
            segment[t].addcmul_(link[t - 1], segment[t - 1])

        torch.addcmul(rest[1:], after[:-1], segment[:-1], value=-1.0, out=lam[L:]).mul_(link).mul_(SQRT2)
        boxes = torch.mul(segment, box, out=lam[:L])
        boxes.addcmul_(boxes, after, value=-1.0)  # the segment's last box takes its total: × (1 − after)
        return y, lam


def project_chains(bounds: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, mu: torch.Tensor, target: float,
                   max_rounds: int, into: tuple[torch.Tensor, torch.Tensor] | None = None) -> ActiveSetResult:
    """Project the chains `x` `[L, b]` (one per column) starting from the multipliers `mu` `[2L − 1, b]`; y and
    multipliers go into `into` if given (`ActiveSetResult.start`).

    `bounds` are finite: ±`projection_parts.HUGE` where a row has none, as a chain part holds them.

    The first guess of the active rows is the complementarity test at y = x − Aᵀμ (`mu` zero:
    the rows x breaks); each round solves exactly and accepts the columns that meet the
    certificate. Columns not accepted within `max_rounds` come back with `solved` False, their
    y and multipliers those of the last guess.
    """
    out = ActiveSetResult.start(x, mu, into)
    work = _Chains(bounds, x)
    live = torch.arange(x.shape[1], device=x.device)
    lam, y = mu, work.start(mu)
    for round_ in range(max_rounds + 1):
        over, under = work.residuals(y)
        last = round_ == max_rounds
        if not last:
            work.guess(lam, over, under)  # before the certificate, which overwrites over and under
        if round_:
            close = worst_violation(over, under) <= target
            off = pressing_off(lam, over, under, target)
            lam.sub_(off)
            if round_ > 1:  # the first solve wrote into the answer itself
                put_columns(out.y, live, y)
                put_columns(out.dual, live, lam)
            accept = close & (off.abs_().sum(dim=0) <= 0.5 * target)
            out.solved[live] = accept
            keep = torch.nonzero(~accept).squeeze(1)
            if keep.numel() == 0 or last:
                break
            if keep.numel() < live.numel():
                live = live[keep]
                work.keep(keep)
        if last:
            break
        # the first solve, of every column, straight into the answer: most settle there (a copy less)
        y, lam = work.solve((out.y, out.dual) if round_ == 0 else None)
        out.rounds[live] += 1
    return out
