"""Batched semismooth-Newton augmented Lagrangian for projecting onto `lower ≤ A·y ≤ upper`.

The projection `min ½‖y − x‖² s.t. l ≤ A y ≤ u` is solved by the method of multipliers
(augmented Lagrangian; Hestenes 1969, Rockafellar 1976), whose inner problem

    φ(y) = ½‖y − x‖² + Σᵢ ρ/2 · dist(aᵢ·y + μᵢ/ρ, [lᵢ, uᵢ])²

is smooth and piecewise quadratic, so it is minimised by a semismooth Newton method
with an exact line search (as in QPALM, Hermans, Themelis & Patrinos 2022, and SSNAL,
Li, Sun & Toh 2018). The Newton matrix `I + ρ·Aₛᵀ Aₛ` (S: rows outside their bounds)
differs per sample, so no factorisation can be shared across a batch; it is applied
matrix-free and solved by conjugate gradients in float32 (on a chain part, where it is
tridiagonal, exactly), while residuals, multipliers and the iterate stay in float64
(iterative refinement), which is what lets the result meet 1e-6 scaled violations.

Why not ADMM with one shared factorisation (Boyd et al. 2011; OSQP, Stellato et al.
2020)? Its iterations are cheap, but on scene polytopes chains of volatility and
mood rows across beats make it converge slowly (OSQP needs 200-400 iterations to
reach 1e-6 here, and its active-set polish fails on the degenerate binding sets that
"never" rows and display rules create); Newton needs 20-30 steps of ~20 CG products
each and no polish. An OSQP-style polish on top of this solver was tried and cost
more than it saved, for the same reason.

All tensors are `[rows, samples]` so that every product is one CSR × dense `addmm`
into a preallocated buffer; samples that have converged are dropped from the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .projection_cg import BufferPool, conjugate_gradients, dot, over_rows, put_columns, take_columns
from .projection_rows import ScaledRows


@dataclass(frozen=True)
class Settings:
    """Solver constants, tuned on the bundled situations and synthetic 8 × 24 scenes."""

    rho_start: float = 30.0     # penalty of a cold start, per unit-norm row
    rho_growth: float = 10.0    # factor applied where the violation falls too slowly
    stall: float = 0.25         # ... i.e. by less than this factor per multiplier update
    rho_max: float = 1e6
    warm_divisor: float = 10.0  # a warm start begins at the previous penalty / this
    inner: float = 10.0         # update multipliers once ‖∇φ‖ ≤ inner × violation
    forcing: float = 1e-2       # relative CG residual of a Newton step (inexact Newton)
    max_cg: int = 100           # CG steps per Newton step
    max_newton: int = 300       # Newton steps per sample before giving up
    line_search_steps: int = 8
    active_rounds: int = 6      # active-set rounds a warm start tries first (`projection_active`)
    # relative CG residual of the active-set solves: a first solve whose guess changed the active rows
    # only finds the next guess, the others should land within tolerance at once (synthetic 8 × 24 warm:
    # 18% less time than 1e-4 throughout; `projection_active.active_set` also stops them once the rows
    # are within it)
    active_first_forcing: float = 3e-2
    active_forcing: float = 1e-5
    # a cold start's augmented Lagrangian hands a sample to the active-set finish once its scaled violation
    # is below this: its multipliers then name the binding rows nearly right, and the finish lands in a few
    # solves what takes the multiplier loop ~10 more Newton steps (cold, two threads: synthetic 8 × 24 at
    # batch 1024 30-40% less time anywhere from 3e-3 to 1e-2, 25% at 3e-4, none at 3e-2; bundled scenes
    # 25-35% less at 1024, 25-50% at 64, 50-70% at 1, alike at 4e-3 and 1e-2; 0 turns it off)
    cold_handoff: float = 5e-3


@dataclass
class ChunkResult:
    """Per-sample outcome, columns in the order the chunk was given."""

    y: torch.Tensor            # [n, b] float64
    dual: torch.Tensor         # [m, b] float64, multipliers of the scaled rows
    rho: torch.Tensor          # [b]
    newton: torch.Tensor       # [b] Newton steps taken
    cg: torch.Tensor           # [b] conjugate-gradient steps taken
    converged: torch.Tensor    # [b] bool


def _sq(v: torch.Tensor) -> torch.Tensor:
    return dot(v, v)


def _clip(v: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`clamp(v, lower, upper)`: with tensor bounds, maximum then minimum runs 2x faster on CPU (torch 2.13)."""
    return torch.minimum(torch.maximum(v, lower, out=out), upper, out=out)


class _NewtonMatrix:
    """`I + Aᵀ diag(D) A` per column in float32, D = ρ on the rows outside their bounds.

    One-variable rows only add to the diagonal, so they are summed once here and the
    products of each CG step run over the other rows (`ScaledRows.kinds`).
    """

    def __init__(self, rows: ScaledRows, D: torch.Tensor):
        split = rows.kinds()
        self.A, self.AT = split.A, split.AT
        self.diag = torch.sparse.mm(split.box, D).add_(1.0)
        self.D = D.index_select(0, split.multi)
        self.t = torch.empty_like(self.D)

    def __call__(self, p: torch.Tensor, out: torch.Tensor) -> None:
        torch.addmm(self.t, self.A, p, beta=0, out=self.t)
        self.t.mul_(self.D)
        torch.mul(p, self.diag, out=out)
        torch.addmm(out, self.AT, self.t, out=out)

    def keep(self, index: torch.Tensor) -> None:
        self.D, self.diag = take_columns(self.D, index), take_columns(self.diag, index)
        self.t = torch.empty_like(self.D)


def _path_solve(D: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve `(I + Aᵀ diag(D) A) d = rhs` exactly for the path rows of a chain part, per column.

    Boxes y_t add D_t to the diagonal and differences (y_{t+1} − y_t)/√2 couple neighbours,
    so the matrix is tridiagonal: the Thomas algorithm, vectorised over the columns.
    """
    L = rhs.shape[0]
    box, coupling = D[:L], 0.5 * D[L:]  # a difference row weighs D/2 on each neighbour and −D/2 between them
    diag = 1.0 + box
    diag[:-1] += coupling
    diag[1:] += coupling
    c, g = torch.empty_like(rhs), torch.empty_like(rhs)
    c[0], g[0] = -coupling[0] / diag[0], rhs[0] / diag[0]
    for t in range(1, L):
        den = diag[t] + coupling[t - 1] * c[t - 1]
        if t < L - 1:
            c[t] = -coupling[t] / den
        g[t] = (rhs[t] + coupling[t - 1] * g[t - 1]) / den
    for t in range(L - 2, -1, -1):
        g[t] -= c[t] * g[t + 1]
    return g


@dataclass
class _Ray:
    """φ along a Newton step, per column: W = A y + μ/ρ, V = A·step, the slope at 0, the bracket [lo, hi]."""

    W: torch.Tensor
    V: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    rho: torch.Tensor
    dy: torch.Tensor       # step·(y − x)
    dd: torch.Tensor       # ‖step‖²
    slope0: torch.Tensor
    T: torch.Tensor        # scratch, shaped like W
    E: torch.Tensor
    t: torch.Tensor        # the trial step, 1 (Newton's) first
    lo: torch.Tensor
    hi: torch.Tensor

    def trial(self) -> torch.Tensor | None:
        """Take φ'(t), φ''(t) (piecewise linear, so Newton is exact piece by piece) and move t in place
        where the slope is not yet small; returns which columns were done, None when all were."""
        t, T, E, V = self.t, self.T, self.E, self.V
        torch.mul(V, t.unsqueeze(0), out=T)
        T.add_(self.W)
        _clip(T, self.lower, self.upper, E)
        E.sub_(T).neg_()
        slope = self.dy + t * self.dd + self.rho * dot(V, E, T)
        done = slope.abs() <= 0.1 * self.slope0.abs()
        if bool(done.all()):
            return None
        T.copy_(E).sign_().abs_().mul_(V).mul_(V)
        curvature = self.dd + self.rho * T.sum(dim=0)
        self.lo = torch.where(slope < 0, t, self.lo)
        self.hi = torch.where(slope > 0, t, self.hi)
        newton = t - slope / curvature.clamp_min(1e-300)
        inside = (newton > self.lo) & (newton < self.hi)
        fallback = torch.where(torch.isinf(self.hi), 2 * t, 0.5 * (self.lo + self.hi))
        t.copy_(torch.where(done, t, torch.where(inside, newton, fallback)))
        return done

    def keep(self, index: torch.Tensor) -> _Ray:
        """The same search on the listed columns only."""
        W = take_columns(self.W, index)
        bounds = (self.lower, self.upper) if self.lower.shape[1] == 1 else \
            (take_columns(self.lower, index), take_columns(self.upper, index))
        return _Ray(W=W, V=take_columns(self.V, index), lower=bounds[0], upper=bounds[1], rho=self.rho[index],
                    dy=self.dy[index], dd=self.dd[index], slope0=self.slope0[index], T=torch.empty_like(W),
                    E=torch.empty_like(W), t=self.t[index], lo=self.lo[index], hi=self.hi[index])


class AlmChunk:
    """One batch of samples `[n, b]` being projected to a scaled violation ≤ `target`; call `run()` once.

    `bounds` are the rows' `(lower, upper)`, `[m, 1]` when every column shares them or
    `[m, b]` when each has its own (the chains of `projection_parts`).
    """

    _STATE = (("x", "n"), ("y", "n"), ("mu", "m"))

    def __init__(self, rows: ScaledRows, bounds: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, mu: torch.Tensor, rho: torch.Tensor, target: float, settings: Settings):
        self.rows, self.settings, self.target = rows, settings, target
        self.lower, self.upper = bounds
        self.n, self.m = rows.n_columns, rows.m
        b = x.shape[1]
        self.pool = BufferPool(x.device, b, "augmented Lagrangian")
        for name, size in self._STATE:
            self._buf(name, size).copy_({"x": x, "y": y, "mu": mu}[name])
        self.rho = rho.clone()
        self.index = torch.arange(b, device=x.device)
        self.newton = torch.zeros(b, dtype=torch.long, device=x.device)
        self.cg = torch.zeros_like(self.newton)
        self.last_pres = torch.full((b,), float("inf"), dtype=torch.float64, device=x.device)
        converged = torch.zeros(b, dtype=torch.bool, device=x.device)
        self.out = ChunkResult(y=y.clone(), dual=mu.clone(), rho=rho.clone(), newton=self.newton.clone(),
                               cg=self.cg.clone(), converged=converged)

    def _buf(self, name: str, size: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return self.pool(name, self.n if size == "n" else self.m, dtype)

    # -- residuals -----------------------------------------------------------------
    def _gradient(self) -> tuple[torch.Tensor, torch.Tensor]:
        """W = A y + μ/ρ, R = ρ·(W − Π(W)) (the next multipliers), G = ∇φ(y); returns (‖G‖, pres).

        `pres` = max |A y − Π(W)| bounds the scaled violation of y, since Π(W) is feasible.
        """
        x, y, mu = self._buf("x", "n"), self._buf("y", "n"), self._buf("mu", "m")
        W, R, G = self._buf("W", "m"), self._buf("R", "m"), self._buf("G", "n")
        rows = self.rows
        torch.addmm(W, rows.A64, y, beta=0, out=W)
        W.addcmul_(mu, (1.0 / self.rho).unsqueeze(0))
        _clip(W, self.lower, self.upper, R)
        R.sub_(W).mul_(-self.rho.unsqueeze(0))
        torch.addmm(y, rows.AT64, R, out=G)
        G.sub_(x)
        T = self._buf("T", "m")
        torch.sub(R, mu, out=T)
        pres = over_rows(torch.amax, T.abs_()) / self.rho
        return _sq(G).sqrt(), pres

    # -- Newton direction ----------------------------------------------------------
    def _direction(self) -> torch.Tensor:
        """Solve (I + ρ Aₛᵀ Aₛ) d = −G, S = rows with a nonzero multiplier: by CG, or exactly on a chain."""
        R = self._buf("R", "m")
        D = R.to(torch.float32).sign_().abs_().mul_(self.rho.to(torch.float32).unsqueeze(0))
        rhs = self._buf("G", "n").to(torch.float32).neg_()
        if self.rows.path:
            d = _path_solve(D, rhs)
        else:
            d, _ = conjugate_gradients(_NewtonMatrix(self.rows, D), rhs, self.settings.forcing,
                                       self.settings.max_cg, self.cg)
        step = self._buf("step", "n")
        step.copy_(d)
        return step

    def _line_search(self, step: torch.Tensor) -> None:
        """Minimise φ(y + t·step) over t ≥ 0 (convex, piecewise quadratic), then move y.

        Most columns accept their first trial; the rest search on alone, compacted, so that
        their few extra trials do not cost a pass over the whole batch each.
        """
        x, y = self._buf("x", "n"), self._buf("y", "n")
        V = self._buf("V", "m")
        torch.addmm(V, self.rows.A64, step, beta=0, out=V)
        dy = dot(step, y) - dot(step, x)
        t = torch.ones_like(self.rho)
        ray = _Ray(W=self._buf("W", "m"), V=V, lower=self.lower, upper=self.upper, rho=self.rho, dy=dy,
                   dd=_sq(step), slope0=dy + dot(V, self._buf("R", "m"), self._buf("T", "m")),
                   T=self._buf("T", "m"), E=self._buf("E", "m"), t=t, lo=torch.zeros_like(t),
                   hi=torch.full_like(t, float("inf")))
        cols = None  # the columns the ray still holds, where fewer than all: its t is then a copy
        for _ in range(self.settings.line_search_steps):
            done = ray.trial()
            if cols is not None:
                t[cols] = ray.t
            if done is None:
                break
            keep = torch.nonzero(~done).squeeze(1)
            if keep.numel() < done.numel():
                cols = keep if cols is None else cols[keep]
                ray = ray.keep(keep)
        y.addcmul_(step, t.unsqueeze(0))

    # -- bookkeeping ---------------------------------------------------------------
    def _finish(self, done: torch.Tensor, converged: torch.Tensor) -> None:
        """Write finished samples out and drop them from the live batch."""
        finished, keep = torch.nonzero(done).squeeze(1), torch.nonzero(~done).squeeze(1)
        cols = self.index[finished]
        put_columns(self.out.y, cols, take_columns(self._buf("y", "n"), finished))
        put_columns(self.out.dual, cols, take_columns(self._buf("R", "m"), finished))
        self.out.rho[cols] = self.rho[finished]
        self.out.newton[cols] = self.newton[finished]
        self.out.cg[cols] = self.cg[finished]
        self.out.converged[cols] = converged[finished]
        state = {name: take_columns(self._buf(name, size), keep) for name, size in self._STATE}
        self.pool.b = keep.numel()
        for name, size in self._STATE:
            self._buf(name, size).copy_(state[name])
        self.rho, self.index = self.rho[keep], self.index[keep]
        if self.lower.shape[1] > 1:
            self.lower, self.upper = take_columns(self.lower, keep), take_columns(self.upper, keep)
        self.newton, self.cg, self.last_pres = self.newton[keep], self.cg[keep], self.last_pres[keep]

    def _outer_update(self, inner_done: torch.Tensor, pres: torch.Tensor) -> None:
        """μ ← ρ(W − Π(W)) where the inner problem is solved; raise ρ where the violation stalls."""
        mu, R = self._buf("mu", "m"), self._buf("R", "m")
        mu.copy_(torch.where(inner_done.unsqueeze(0), R, mu))
        stalled = inner_done & (pres > self.settings.stall * self.last_pres)
        raised = (self.rho * self.settings.rho_growth).clamp_max(self.settings.rho_max)
        self.rho = torch.where(stalled, raised, self.rho)
        self.last_pres = torch.where(inner_done, pres, self.last_pres)

    def run(self, handoff: float = 0.0) -> ChunkResult:
        """Newton steps until each sample's violation is ≤ target and its ‖∇φ‖ ≤ target / 2, or until its
        violation is below `handoff` (returned not converged, with its current multipliers ρ(W − Π(W))).

        At that point y − x + Aᵀμ = ∇φ with sign-consistent μ, so y is the exact
        projection of x + ∇φ onto the polytope with bounds moved by at most the violation.
        """
        g_final = 0.5 * self.target
        while self.pool.b:
            gnorm, pres = self._gradient()
            converged = (pres <= self.target) & (gnorm <= g_final)
            done = converged | (self.newton >= self.settings.max_newton) | (pres < handoff)
            if bool(done.any()):
                self._finish(done, converged)
                continue
            inner_done = gnorm <= torch.clamp(self.settings.inner * pres, min=g_final)
            if bool(inner_done.any()):
                self._outer_update(inner_done, pres)
                gnorm, pres = self._gradient()
            self.newton += 1
            self._line_search(self._direction())
        return self.out
