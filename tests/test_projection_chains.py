"""Chains projected by closed-form active-set solves: exact answers, multipliers and hand-over."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from storydiff import projection
from storydiff.projection import project
from storydiff.projection_alm import Settings
from storydiff.projection_chains import project_chains
from storydiff.projection_parts import HUGE
from storydiff.projection_synthetic import synthetic_scene

osqp = pytest.importorskip("osqp")
sparse = pytest.importorskip("scipy.sparse")

TARGET = 1e-7
ROOT2 = math.sqrt(2.0)


def path_matrix(L: int) -> np.ndarray:
    """The chain rows: boxes y_t, then steps (y_{t+1} − y_t)/√2."""
    A = np.zeros((2 * L - 1, L))
    A[np.arange(L), np.arange(L)] = 1.0
    A[L + np.arange(L - 1), np.arange(L - 1)] = -1 / ROOT2
    A[L + np.arange(L - 1), np.arange(1, L)] = 1 / ROOT2
    return A


def reference(A: np.ndarray, lower: np.ndarray, upper: np.ndarray, x: np.ndarray) -> np.ndarray:
    """OSQP at eps 1e-10 with polishing, one chain at a time."""
    out = []
    for j in range(x.shape[1]):
        solver = osqp.OSQP()
        solver.setup(sparse.identity(A.shape[1], format="csc"), -x[:, j], sparse.csc_matrix(A), lower[:, j],
                     upper[:, j], verbose=False, eps_abs=1e-10, eps_rel=1e-10, polishing=True, max_iter=400000)
        out.append(solver.solve().x)
    return np.array(out).T


def random_chains(L: int, b: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ranges [0, 1] or [−1, 1], a pin here and there, volatility bands of 0.1-0.4, one-sided steps; x noisy
    around a walk that fits them."""
    g = torch.Generator().manual_seed(seed)
    m = 2 * L - 1
    low = torch.where(torch.rand(1, b, generator=g) < 0.5, 0.0, -1.0).expand(L, b).clone()
    lower, upper = torch.empty(m, b, dtype=torch.float64), torch.empty(m, b, dtype=torch.float64)
    lower[:L], upper[:L] = low, 1.0
    band = (0.1 + 0.3 * torch.rand(L - 1, b, generator=g, dtype=torch.float64)) / ROOT2
    lower[L:], upper[L:] = -band, band
    lower[L:][torch.rand(L - 1, b, generator=g) < 0.1] = -HUGE  # a chain part's missing bound
    walk = torch.empty(L, b, dtype=torch.float64)
    walk[0] = 0.5
    for t in range(1, L):
        walk[t] = (walk[t - 1] + 0.5 * band[t - 1] * ROOT2 * (2 * torch.rand(b, generator=g) - 1)).clamp(0, 1)
    pins = torch.rand(L, b, generator=g) < 0.05
    lower[:L][pins] = upper[:L][pins] = walk[pins]
    x = walk + 0.3 * torch.randn(L, b, generator=g, dtype=torch.float64)
    return x, lower, upper


@pytest.mark.parametrize("seed", [0, 1])
def test_chains_match_osqp_with_stationary_sign_consistent_multipliers(seed):
    L, b = 12, 200
    x, lower, upper = random_chains(L, b, seed)
    mu = torch.zeros(2 * L - 1, b, dtype=torch.float64)
    out = project_chains((lower, upper), x, mu, TARGET, max_rounds=30)
    solved = out.solved
    assert solved.float().mean() >= 0.6  # from cold; the rest cycle and go to the augmented Lagrangian
    A = path_matrix(L)
    truth = reference(A, lower.numpy(), upper.numpy(), x.numpy())
    assert np.abs(out.y[:, solved].numpy() - truth[:, solved.numpy()]).max() <= 1e-6
    # x − y = Aᵀλ, with λ ≥ 0 only at an upper bound and ≤ 0 only at a lower one
    stationarity = x - out.y - torch.from_numpy(A.T) @ out.dual
    assert stationarity[:, solved].abs().max() <= TARGET
    rows = torch.from_numpy(A) @ out.y
    pressing_up, pressing_down = out.dual > 0, out.dual < 0
    assert ((rows - upper).abs()[pressing_up & solved] <= TARGET).all()
    assert ((rows - lower).abs()[pressing_down & solved] <= TARGET).all()


def test_a_step_band_and_a_box_share_the_push_as_the_psychology_reads():
    """x = (0, 1) with y₁ ≤ 0.5 and a step of at most 0.2: y = (0.3, 0.5); the box takes 0.2 of the push and the
    step (y₁ − y₀)/√2 takes 0.3√2."""
    L = 2
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    lower = torch.tensor([[-1.0], [-1.0], [-0.2 / ROOT2]], dtype=torch.float64)
    upper = torch.tensor([[1.0], [0.5], [0.2 / ROOT2]], dtype=torch.float64)
    out = project_chains((lower, upper), x, torch.zeros(2 * L - 1, 1, dtype=torch.float64), TARGET, max_rounds=6)
    assert bool(out.solved[0])
    assert torch.allclose(out.y[:, 0], torch.tensor([0.3, 0.5], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out.dual[:, 0], torch.tensor([0.0, 0.2, 0.3 * ROOT2], dtype=torch.float64), atol=1e-12)


def test_a_segment_without_a_box_moves_to_its_mean():
    """Three beats pulled apart by a band of 0.1 per step: a straight ramp centred on x's mean."""
    x = torch.tensor([[0.0], [0.9], [0.0]], dtype=torch.float64)
    band = 0.1 / ROOT2
    lower = torch.tensor([[-1.0]] * 3 + [[-band]] * 2, dtype=torch.float64)
    upper = torch.tensor([[1.0]] * 3 + [[band]] * 2, dtype=torch.float64)
    out = project_chains((lower, upper), x, torch.zeros(5, 1, dtype=torch.float64), TARGET, max_rounds=6)
    truth = reference(path_matrix(3), lower.numpy(), upper.numpy(), x.numpy())
    assert bool(out.solved[0]) and np.abs(out.y.numpy() - truth).max() <= 1e-8
    assert out.dual[:3].abs().max() == 0  # no box holds


def test_no_rounds_leave_every_chain_as_it_came():
    x, lower, upper = random_chains(8, 16, seed=4)
    mu = torch.zeros(15, 16, dtype=torch.float64)
    out = project_chains((lower, upper), x, mu, TARGET, max_rounds=0)
    assert not out.solved.any() and (out.rounds == 0).all() and torch.equal(out.y, x)


def test_chains_the_rounds_cannot_settle_go_to_the_augmented_lagrangian():
    """With one round, chains whose first guess is wrong are left unsolved; `project` finishes them exactly."""
    x, lower, upper = random_chains(12, 64, seed=3)
    mu = torch.zeros(23, 64, dtype=torch.float64)
    assert not project_chains((lower, upper), x, mu, TARGET, max_rounds=1).solved.all()
    polytope, y0 = synthetic_scene(characters=2, beats=12, seed=0)
    X = y0 + 0.15 * torch.randn(64, y0.numel(), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y, info = project(X, polytope, settings=Settings(active_rounds=1))
    y_full, _ = project(X, polytope)
    assert info.converged.all() and info.max_violation.max() <= 1e-6
    assert (y - y_full).norm(dim=1).max() <= 1e-5


def test_chains_whose_previous_multipliers_name_the_active_rows_settle_in_one_solve(monkeypatch):
    polytope, y0 = synthetic_scene(characters=3, beats=12, seed=0)
    g = torch.Generator().manual_seed(1)
    x = y0 + 0.15 * torch.randn(64, y0.numel(), generator=g, dtype=torch.float64)
    _, info = project(x, polytope)
    moved = x + 0.006 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    rounds = []
    real = projection.project_chains

    def spy(*args):
        out = real(*args)
        rounds.append(out.rounds[out.solved])
        return out

    monkeypatch.setattr(projection, "project_chains", spy)
    y, _ = project(moved, polytope, warm_start=info)
    settled = torch.cat(rounds)
    assert (settled <= 1).float().mean() >= 0.85
    assert (y - project(moved, polytope)[0]).norm(dim=1).max() <= 1e-5
