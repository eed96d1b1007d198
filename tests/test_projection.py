"""Projection onto a polytope: exactness against OSQP, optimality, warm starts, edge cases."""
from __future__ import annotations

import threading
from unittest import mock

import numpy as np
import pytest
import torch
from conftest import LIBRARY
from hypothesis import given, settings
from hypothesis import strategies as st

from storydiff import projection, projection_active, projection_cg, projection_parts
from storydiff.constraints import compile_constraints
from storydiff.loader import load_characters, load_situation
from storydiff.polytope import Polytope
from storydiff.projection import ProjectionInfo, project, release_buffers
from storydiff.projection_alm import Settings
from storydiff.projection_cg import copy_columns, over_rows, share_buffers, stop_sharing_buffers
from storydiff.projection_rows import build_scaled_rows
from storydiff.projection_synthetic import synthetic_scene

osqp = pytest.importorskip("osqp")
sparse = pytest.importorskip("scipy.sparse")

TOL = 1e-6
DIST = 1e-5  # how close to the true projection a result must be (OSQP's own eps-1e-9 answer is the truth)


def random_polytope(seed: int, n: int = 40, m: int = 80, equalities: int = 4) -> tuple[Polytope, np.ndarray]:
    """Sparse rows (1-4 variables) with bounds around A·y0 for a random y0, so y0 is feasible.

    Includes box rows, equality rows, one-sided rows (±inf) and an empty row that always holds.
    """
    rng = np.random.default_rng(seed)
    y0 = rng.uniform(-1, 1, n)
    rows, cols, vals = [], [], []
    for i in range(m):
        k = 1 if i < n // 2 else int(rng.integers(1, min(n, 4) + 1))
        chosen = rng.choice(n, k, replace=False)
        rows += [i] * k
        cols += chosen.tolist()
        vals += rng.normal(0, 1, k).tolist()
    A = sparse.csr_matrix((vals, (rows, cols)), shape=(m + 1, n))
    ay = A @ y0
    lower, upper = ay - rng.uniform(0.05, 0.5, m + 1), ay + rng.uniform(0.05, 0.5, m + 1)
    eq = rng.choice(np.arange(n // 2, m), equalities, replace=False)
    lower[eq] = upper[eq] = ay[eq]
    one_sided = rng.choice(np.setdiff1d(np.arange(m), eq), m // 5, replace=False)
    lower[one_sided[::2]] = -np.inf
    upper[one_sided[1::2]] = np.inf
    coo = A.tocoo()
    indices = torch.tensor(np.stack([coo.row, coo.col]))
    At = torch.sparse_coo_tensor(indices, torch.tensor(coo.data), (m + 1, n))
    polytope = Polytope(A=At.coalesce().to_sparse_csr(), lower=torch.tensor(lower), upper=torch.tensor(upper),
                        names=[f"row{i}" for i in range(m + 1)], columns=[f"v{j}" for j in range(n)])
    return polytope, y0


def osqp_reference(polytope: Polytope, X: np.ndarray) -> np.ndarray:
    """OSQP at eps 1e-9 with polishing, one point at a time: the ground truth."""
    coo = polytope.A.to_sparse_coo().coalesce()
    A = sparse.csc_matrix((coo.values().numpy(), coo.indices().numpy()), shape=polytope.shape)
    n = polytope.shape[1]
    solver = osqp.OSQP()
    solver.setup(sparse.identity(n, format="csc"), -X[0], A, polytope.lower.numpy(), polytope.upper.numpy(),
                 verbose=False, eps_abs=1e-9, eps_rel=1e-9, polishing=True, max_iter=200000)
    out = []
    for x in X:
        solver.update(q=-x)
        out.append(solver.solve().x)
    return np.array(out)


def noisy(y0: np.ndarray, batch: int, scale: float, seed: int) -> torch.Tensor:
    return torch.tensor(y0 + np.random.default_rng(seed).normal(0, scale, (batch, len(y0))))


@pytest.mark.parametrize("seed", range(4))
def test_matches_osqp_on_random_polytopes(seed):
    polytope, y0 = random_polytope(seed)
    x = noisy(y0, 8, 0.8, seed)
    y, info = project(x, polytope)
    reference = osqp_reference(polytope, x.numpy())
    assert info.converged.all()
    assert polytope.violation(y).max() <= TOL
    assert np.abs(info.max_violation.numpy() - polytope.violation(y).numpy()).max() < 1e-12
    assert np.linalg.norm(y.numpy() - reference, axis=1).max() <= DIST


def test_matches_osqp_on_a_scene_polytope():
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=3)
    x = noisy(y0.numpy(), 6, 0.2, 0)
    y, info = project(x, polytope)
    assert polytope.violation(y).max() <= TOL
    assert np.linalg.norm(y.numpy() - osqp_reference(polytope, x.numpy()), axis=1).max() <= DIST
    assert torch.allclose(info.distance, (y - x).norm(dim=1))


def kkt_residual(polytope: Polytope, x: torch.Tensor, y: torch.Tensor, mu: torch.Tensor) -> float:
    """max |x − y − Aᵀμ|, with μ forced to zero where its sign disagrees with the bound it sits on."""
    A = polytope.dense()
    ay = y @ A.T
    at_upper = (ay - polytope.upper).abs() <= TOL * polytope.row_norms()
    at_lower = (ay - polytope.lower).abs() <= TOL * polytope.row_norms()
    consistent = torch.where(mu > 0, at_upper, torch.where(mu < 0, at_lower, True))
    mu = torch.where(consistent, mu, 0.0)
    return float((x - y - mu @ A).abs().max())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 30), scale=st.floats(0.01, 3.0), split=st.booleans())
def test_first_order_optimality(seed, n, scale, split):
    polytope, y0 = random_polytope(seed, n=n, m=2 * n, equalities=min(2, n // 2))
    x = noisy(y0, 3, scale, seed)
    with mock.patch.object(projection, "MIN_SPLIT_ENTRIES", 0 if split else projection.MIN_SPLIT_ENTRIES):
        y, info = project(x, polytope)
    assert info.max_violation.max() <= TOL
    assert kkt_residual(polytope, x, y, info.multipliers()) <= TOL


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.05, 2.0))
def test_idempotent_and_feasible_points_stay(seed, scale):
    polytope, y0 = random_polytope(seed, n=20, m=40)
    y, _ = project(noisy(y0, 4, scale, seed), polytope)
    again, info = project(y, polytope)
    assert (again - y).norm(dim=1).max() <= DIST
    _, info = project(torch.tensor(y0).unsqueeze(0), polytope)
    assert info.distance.item() <= 1e-7


def test_warm_start_same_answer_fewer_iterations():
    polytope, y0 = synthetic_scene(characters=2, beats=8, seed=1)
    x = noisy(y0.numpy(), 8, 0.2, 1)
    y, info = project(x, polytope)
    nudged = x + 0.005 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cold_y, cold = project(nudged, polytope)
    warm_y, warm = project(nudged, polytope, warm_start=info)
    assert (warm_y - cold_y).norm(dim=1).max() <= DIST
    assert warm.linear_iterations.sum() < cold.linear_iterations.sum()
    same_y, same = project(x, polytope, warm_start=info)
    assert (same_y - y).norm(dim=1).max() <= DIST
    assert same.iterations.sum() < info.iterations.sum()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), move=st.sampled_from([1e-3, 1e-2, 0.1, 1.0]), split=st.booleans())
def test_warm_start_finish_is_exact(seed, move, split):
    """The active-set finish of a warm call (or the augmented Lagrangian it hands over to) is the projection."""
    polytope, y0 = random_polytope(seed, n=24, m=48)
    x = noisy(y0, 4, 0.5, seed)
    with mock.patch.object(projection, "MIN_SPLIT_ENTRIES", 0 if split else projection.MIN_SPLIT_ENTRIES):
        _, info = project(x, polytope)
        moved = x + torch.tensor(np.random.default_rng(seed + 1).normal(0, move, tuple(x.shape)))
        y, warm = project(moved, polytope, warm_start=info)
    assert warm.converged.all() and warm.max_violation.max() <= TOL
    assert np.linalg.norm(y.numpy() - osqp_reference(polytope, moved.numpy()), axis=1).max() <= DIST
    assert kkt_residual(polytope, moved, y, warm.multipliers()) <= TOL


def test_small_moves_finish_in_a_few_active_set_rounds():
    """After a sampler-sized move the previous active set is nearly right: a few linear solves, no penalty loop."""
    cast = load_characters(LIBRARY)
    polytope = compile_constraints(cast, load_situation(LIBRARY / "situations" / "storm.situation.xml", cast))
    start = torch.rand(1, polytope.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y0, _ = project(start, polytope)
    x = noisy(y0[0].numpy(), 16, 0.15, 1)
    _, info = project(x, polytope)
    moved = x + 0.006 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    no_finish = Settings(active_rounds=0)
    _, alm = project(moved, polytope, warm_start=info, settings=no_finish)
    y, warm = project(moved, polytope, warm_start=info)
    assert warm.iterations.max() <= Settings().active_rounds
    assert warm.linear_iterations.sum() < alm.linear_iterations.sum() / 2
    assert (y - project(moved, polytope)[0]).norm(dim=1).max() <= DIST


def test_a_degenerate_scene_settles_in_the_active_set_though_its_violation_rises_on_the_way():
    """Where "never", range and display rows meet at 0 the guesses overshoot before they settle: a rise that
    stays within GIVE_UP_GROWTH of where the sample came in is not a reason to hand it to the augmented
    Lagrangian."""
    polytope, y0 = synthetic_scene(characters=3, beats=12, seed=0)
    g = torch.Generator().manual_seed(0)
    x = y0 + 0.15 * torch.randn(32, y0.numel(), generator=g, dtype=torch.float64)
    _, info = project(x, polytope)
    moved = x + 0.006 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    y, warm = project(moved, polytope, warm_start=info)
    assert (warm.iterations <= Settings().active_rounds).sum() >= 24
    assert warm.converged.all() and (y - project(moved, polytope)[0]).norm(dim=1).max() <= DIST


def test_active_set_hands_what_it_cannot_settle_to_the_augmented_lagrangian():
    """One round from a far-off warm start settles few samples; the rest still come back exact."""
    polytope, y0 = synthetic_scene(characters=2, beats=8, seed=2)
    x = noisy(y0.numpy(), 8, 0.3, 2)
    _, info = project(x, polytope)
    far = noisy(y0.numpy(), 8, 0.3, 3)
    y, warm = project(far, polytope, warm_start=info, settings=Settings(active_rounds=1))
    assert (warm.iterations > 1).any()  # some went on in the augmented Lagrangian
    assert warm.converged.all() and warm.max_violation.max() <= TOL
    assert (y - project(far, polytope)[0]).norm(dim=1).max() <= DIST


def test_a_warm_start_further_out_than_the_input_starts_from_zero_multipliers():
    """A sampler's last estimate can land nearly inside after steps far out (DDIM's does): the previous
    multipliers would push it out again, so those samples start cold, in the active set and after it."""
    cast = load_characters(LIBRARY)
    polytope = compile_constraints(cast, load_situation(LIBRARY / "situations" / "the-wake.situation.xml", cast))
    g = torch.Generator().manual_seed(0)
    start = torch.rand(4, polytope.shape[1], generator=g, dtype=torch.float64)
    _, far = project(start + 0.5 * torch.randn(start.shape, generator=g, dtype=torch.float64), polytope)
    y0, _ = project(start, polytope)
    near = y0 + 0.01 * torch.randn(y0.shape, generator=g, dtype=torch.float64)
    y_cold, _ = project(near, polytope)
    y, warm = project(near, polytope, warm_start=far)
    assert warm.iterations.max() <= Settings().active_rounds  # was 39-46
    assert (y - y_cold).norm(dim=1).max() <= DIST
    # what the active set hands on starts as the augmented Lagrangian does cold: the same steps, the same answer
    alone = Settings(active_rounds=0, cold_handoff=0.0)
    y_alm, cold = project(near, polytope, settings=alone)
    y, alm = project(near, polytope, warm_start=far, settings=alone)
    assert torch.equal(alm.iterations, cold.iterations) and torch.equal(y, y_alm)


def test_an_active_set_solve_fixes_variables_at_their_bounds_and_shares_their_multipliers():
    """One-variable rows at a bound fix their variable: the solve runs on the other rows over the free
    variables, and the fixed variable's multiplier is split between the rows that hold it (a range and a
    pin at one value). x breaks exactly the rows that hold its projection, so one solve from zero lands."""
    polytope = _tiny([[1, 0, 0], [-1, 0, 0], [1, 1, 0], [0, 1, -1], [0, 0, 1]],
                     lower=[0.0, -0.5, -np.inf, 0.0, 0.1], upper=[0.5, np.inf, 0.8, np.inf, 1.0])
    rows = build_scaled_rows(polytope, torch.device("cpu"))
    x = torch.tensor([[1.5], [0.6], [0.7]], dtype=torch.float64)
    part = projection_parts.whole(rows)  # its bounds finite, as the solver needs them
    found = projection_active.active_set(rows, (part.lower, part.upper), x, torch.zeros(5, 1, dtype=torch.float64),
                                         1e-9, Settings())
    assert bool(found.solved[0]) and int(found.rounds[0]) <= 2
    assert torch.allclose(found.y[:, 0], torch.tensor([0.5, 0.3, 0.3], dtype=torch.float64), atol=1e-8)
    # x − y = Aᵀλ: a's 0.3 shared by its two rows (a ≤ 0.5, −a ≥ −0.5), a + b ≤ 0.8 presses with 0.7,
    # b ≥ c with −0.4 (those two scaled by √2)
    root2 = np.sqrt(2.0)
    expected = torch.tensor([0.15, -0.15, 0.7 * root2, -0.4 * root2, 0.0], dtype=torch.float64)
    assert torch.allclose(found.dual[:, 0], expected, atol=1e-7)


def _warm_pair(characters: int, beats: int, batch: int) -> tuple[Polytope, ProjectionInfo, torch.Tensor]:
    """A synthetic scene, a cold projection of a noisy batch and the batch moved a sampler step on."""
    polytope, y0 = synthetic_scene(characters=characters, beats=beats, seed=0)
    g = torch.Generator().manual_seed(1)
    x = y0 + 0.15 * torch.randn(batch, y0.numel(), generator=g, dtype=torch.float64)
    _, info = project(x, polytope)
    return polytope, info, x + 0.006 * torch.randn(x.shape, generator=g, dtype=torch.float64)


def test_active_rows_packed_or_masked_give_the_same_projection(monkeypatch):
    """Where few rows are active, the active-set solves run on those rows alone, packed; the answer is the same."""
    polytope, info, moved = _warm_pair(4, 12, 16)
    built = []
    real = projection_active._PackedRows.__init__

    def spy(self, *args):
        built.append(args[1].shape)
        real(self, *args)

    monkeypatch.setattr(projection_active._PackedRows, "__init__", spy)
    monkeypatch.setattr(projection_active, "PACK_ENTRIES", 0)
    monkeypatch.setattr(projection_active, "PACK_SHARE", 1.0)
    packed, packed_info = project(moved, polytope, warm_start=info)
    assert built and all(k <= polytope.shape[0] for k, _ in built)
    built.clear()
    monkeypatch.setattr(projection_active, "PACK_SHARE", 0.0)
    masked, masked_info = project(moved, polytope, warm_start=info)
    assert not built
    settled = [int((i.iterations <= Settings().active_rounds).sum()) for i in (packed_info, masked_info)]
    assert settled[0] >= 12 and abs(settled[0] - settled[1]) <= 1  # the same solves, up to float32 rounding
    assert packed_info.converged.all() and packed_info.max_violation.max() <= TOL
    assert (packed - masked).norm(dim=1).max() <= DIST
    assert (packed - project(moved, polytope)[0]).norm(dim=1).max() <= DIST
    monkeypatch.setattr(projection_active, "PACK_SHARE", 1.0)  # packed again, in the buffers the first call left
    assert torch.equal(project(moved, polytope, warm_start=info)[0], packed)


def test_what_the_active_set_leaves_goes_to_the_augmented_lagrangian_as_one_batch(monkeypatch):
    """Leftovers of every chunk are solved together: per chunk, a few columns each would repeat the overhead."""
    polytope, info, moved = _warm_pair(3, 12, 64)
    monkeypatch.setattr(projection, "CPU_CHUNK_ENTRIES", 1)  # the fewest columns a chunk, 32: two chunks
    runs = []
    real = projection.AlmChunk.run

    def spy(self, *args):
        runs.append((self.rows.m, self.pool.b))
        return real(self, *args)

    monkeypatch.setattr(projection.AlmChunk, "run", spy)
    y, warm = project(moved, polytope, warm_start=info, settings=Settings(active_rounds=2))  # leaves some of each chunk
    most = max(m for m, _ in runs)
    general = [b for m, b in runs if m == most]  # the general part (chain parts have a few rows each)
    assert len(general) == 1 and 1 < general[0] <= 32
    assert warm.converged.all() and (y - project(moved, polytope)[0]).norm(dim=1).max() <= DIST


def test_chunks_on_threads_match_one_chunk(monkeypatch):
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=7)
    x = noisy(y0.numpy(), 12, 0.3, 7)
    whole, _ = project(x, polytope)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        monkeypatch.setattr(projection, "MIN_THREAD_ENTRIES", 1)
        split, info = project(x, polytope)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert info.converged.all() and info.max_violation.max() <= TOL
    assert (split - whole).norm(dim=1).max() <= DIST


def test_leftovers_run_in_the_background_on_a_worker_and_change_nothing(monkeypatch):
    """What a part's finish leaves goes on a worker thread while the next part starts: the answer is the one
    thread's (to rounding: chunks of other sizes sum in another order), and the thread setting comes back."""
    polytope, info, moved = _warm_pair(3, 12, 64)
    settings = Settings(active_rounds=1)  # leaves some of every part
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial, one = project(moved, polytope, warm_start=info, settings=settings)
        torch.set_num_threads(2)
        monkeypatch.setattr(projection, "MIN_THREAD_ENTRIES", 1)
        where = []
        real = projection._over_chunks

        def spy(solve, columns, rows, background=False):
            def solve_here(cols):
                where.append((background, threading.current_thread().name))
                return solve(cols)
            return real(solve_here, columns, rows, background)

        monkeypatch.setattr(projection, "_over_chunks", spy)
        threaded, two = project(moved, polytope, warm_start=info, settings=settings)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert {name.startswith("storydiff-projection") for background, name in where if background} == {True}
    assert one.iterations.max() > settings.active_rounds and two.converged.all()  # leftovers, all solved
    assert (threaded - serial).norm(dim=1).max() <= DIST and two.max_violation.max() <= TOL


def test_a_call_reuses_the_last_ones_part_buffers_and_leaves_its_answer_and_state_as_they_were():
    polytope, info, moved = _warm_pair(3, 8, 64)
    y, first = project(moved, polytope, warm_start=info)
    assert len(first.parts) > 1  # split: each part gathered into and solved in kept buffers
    kept = y.clone(), first.multipliers(), first.state.y.clone(), [d.clone() for d in first.state.duals]
    again, second = project(moved + 0.02, polytope, warm_start=first)
    assert torch.equal(y, kept[0]) and torch.equal(first.multipliers(), kept[1])
    assert torch.equal(first.state.y, kept[2]) and all(map(torch.equal, first.state.duals, kept[3]))
    release_buffers()
    fresh, _ = project(moved + 0.02, polytope, warm_start=first)  # from storage of its own: the same answer
    assert torch.equal(again, fresh) and second.max_violation.max() <= TOL


def test_float32_input_meets_tolerance():
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=2)
    x = noisy(y0.numpy(), 5, 0.3, 2).to(torch.float32)
    y, info = project(x, polytope)
    assert y.dtype == torch.float32
    assert polytope.violation(y).max() <= TOL
    assert info.max_violation.max() <= TOL
    assert info.state.y.data_ptr() == y.data_ptr() and info.state.y.shape == y.T.shape  # the answer, not a copy
    moved, _ = project(x + 0.01, polytope, warm_start=info)  # which the next call starts from
    assert polytope.violation(moved).max() <= TOL and torch.equal(info.state.y.T, y)


def test_block_diag_projects_scenes_independently():
    (p1, y1), (p2, y2) = random_polytope(11), synthetic_scene(characters=2, beats=4, seed=4)
    x1, x2 = noisy(y1, 3, 0.7, 1), noisy(y2.numpy(), 3, 0.3, 2)
    both, info = project(torch.cat([x1, x2], dim=1), Polytope.block_diag([p1, p2]))
    (a, _), (b, _) = project(x1, p1), project(x2, p2)
    assert (both - torch.cat([a, b], dim=1)).norm(dim=1).max() <= DIST
    assert all(name.startswith(("scene0/", "scene1/")) for name in info.binding)


def test_batch_of_one_and_binding_names():
    polytope, y0 = synthetic_scene(characters=2, beats=4, seed=5)
    x = noisy(y0.numpy(), 1, 0.5, 5)
    y, info = project(x, polytope)
    assert y.shape == x.shape and info.max_violation.item() <= TOL
    names = info.binding_rows(0)
    assert names and set(names) <= set(info.binding)


def test_binding_mask_is_the_rows_within_tol_of_a_bound_at_the_returned_y():
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=5)
    x = noisy(y0.numpy(), 4, 0.5, 5).to(torch.float32)
    y, info = project(x, polytope)
    project(x + 0.05, polytope, warm_start=info)  # the next call leaves this one's answer as it was
    A = polytope.dense()
    Ay = y.double() @ A.T  # as returned: rounded to float32
    gap = torch.minimum((Ay - polytope.lower).abs(), (Ay - polytope.upper).abs()) / A.norm(dim=1)
    clear = (gap - TOL).abs() > 1e-9  # rows a rounding away from tol may go either way
    assert info.binding_mask.shape == (4, len(polytope.names)) and info.binding_mask.sum() > 20
    assert torch.equal(info.binding_mask[clear], (gap <= TOL)[clear])


def _tiny(A: list[list[float]], lower: list[float], upper: list[float]) -> Polytope:
    dense = torch.tensor(A, dtype=torch.float64).reshape(len(lower), -1)
    return Polytope(A=dense.to_sparse_csr(), lower=torch.tensor(lower, dtype=torch.float64),
                    upper=torch.tensor(upper, dtype=torch.float64),
                    names=[f"r{i}" for i in range(len(lower))],
                    columns=[f"c{j}" for j in range(dense.shape[1])])


def test_polytope_without_rows_is_identity():
    none = torch.zeros(0, dtype=torch.float64)
    polytope = Polytope(A=torch.zeros(0, 3, dtype=torch.float64).to_sparse_csr(), lower=none, upper=none,
                        names=[], columns=["a", "b", "c"])
    x = torch.randn(4, 3, dtype=torch.float64)
    y, info = project(x, polytope)
    assert torch.equal(y, x) and info.binding == [] and info.distance.max() == 0


def test_pins_free_rows_and_empty_rows():
    # y0 = 0.3 pinned, y0 + y1 free (both bounds infinite), an empty row that holds, y1 ≤ 0.5
    polytope = _tiny([[1, 0], [1, 1], [0, 0], [0, 1]], [0.3, -np.inf, -1.0, -np.inf], [0.3, np.inf, 1.0, 0.5])
    y, info = project(torch.tensor([[2.0, 3.0], [0.0, -1.0]], dtype=torch.float64), polytope)
    assert torch.allclose(y, torch.tensor([[0.3, 0.5], [0.3, -1.0]], dtype=torch.float64), atol=1e-7)
    assert info.binding_rows(0) == ["r0", "r3"] and info.binding_rows(1) == ["r0"]


def test_columns_no_row_holds_stay_where_x_is_when_the_rest_is_split(monkeypatch):
    monkeypatch.setattr(projection, "MIN_SPLIT_ENTRIES", 0)
    # y0 = 0.3 pinned, y1 in no row, y2 ≤ y3 − 0.1 (a general part)
    polytope = _tiny([[1, 0, 0, 0], [0, 0, 1, -1]], [0.3, -np.inf], [0.3, -0.1])
    x = torch.tensor([[2.0, 3.0, 1.0, 1.0], [0.0, -1.0, 0.0, 0.5]], dtype=torch.float64)
    y, info = project(x, polytope)
    assert len(info.parts) == 2 and torch.equal(y[:, 1], x[:, 1])
    assert torch.allclose(y, torch.tensor([[0.3, 3.0, 0.95, 1.05], [0.3, -1.0, 0.0, 0.5]], dtype=torch.float64),
                          atol=1e-7)


@pytest.mark.parametrize("lower,upper,match", [([1.0], [0.0], "exceeds"), ([0.5], [1.0], "no variables")])
def test_rows_that_cannot_hold_are_named(lower, upper, match):
    A = [[1.0, 0.0]] if match == "exceeds" else [[0.0, 0.0]]
    with pytest.raises(ValueError, match=f"r0.*{match}"):
        project(torch.zeros(1, 2, dtype=torch.float64), _tiny(A, lower, upper))


def test_infeasible_polytope_reports_not_converged():
    polytope = _tiny([[1, 0], [1, 1], [0, 1]], [1.0, -np.inf, 1.0], [np.inf, 0.5, np.inf])
    _, info = project(torch.zeros(2, 2, dtype=torch.float64), polytope, settings=Settings(max_newton=40))
    assert not info.converged.any() and info.max_violation.min() > TOL


def test_bad_inputs_are_refused():
    polytope, _ = random_polytope(0)
    with pytest.raises(ValueError, match="batch"):
        project(torch.zeros(3, dtype=torch.float64), polytope)
    with pytest.raises(ValueError, match="NaN"):
        project(torch.full((1, 40), float("nan")), polytope)
    with pytest.raises(TypeError, match="torch.Tensor, got ndarray"):
        project(np.zeros((1, 40)), polytope)
    for tol in (float("nan"), -1.0, 0.0):
        with pytest.raises(ValueError, match="tol must be a positive number"):
            project(torch.zeros(1, 40, dtype=torch.float64), polytope, tol=tol)
    with pytest.raises(ValueError, match="at least one polytope"):
        Polytope.block_diag([])


def test_warm_start_from_another_polytope_or_batch_starts_cold():
    polytope, y0 = random_polytope(0)
    x = noisy(y0, 3, 0.5, 0)
    expected, _ = project(x, polytope)
    _, other = project(torch.zeros(2, 40, dtype=torch.float64), polytope)
    _, elsewhere = project(torch.zeros(3, 30, dtype=torch.float64), random_polytope(1, n=30)[0])
    for warm in (other, elsewhere.state):
        y, _ = project(x, polytope, warm_start=warm)
        assert (y - expected).norm(dim=1).max() <= DIST


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=6)
    x = noisy(y0.numpy(), 16, 0.3, 6)
    y_cpu, _ = project(x, polytope)
    y_gpu, info = project(x.cuda(), polytope)
    assert y_gpu.device.type == "cuda" and info.max_violation.max().item() <= TOL
    assert (y_gpu.cpu() - y_cpu).norm(dim=1).max() <= DIST


def test_the_routes_written_for_gpus_land_where_the_cpu_routes_do(monkeypatch):
    """CI has no GPU, so the GPU routes run here on CPU: the batch in one chunk with no worker threads,
    gathers where runs of columns would be slices, plain reductions, `where` copies. Cold and warm, on a
    scene large enough to split into chains and a general part."""
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=6)
    x = noisy(y0.numpy(), 64, 0.3, 6)
    moved = x + 0.006 * torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    cold, info = project(x, polytope)
    warm, _ = project(moved, polytope, warm_start=info)
    assert len(info.parts) > 1 and any(part.rows.path for part in info.parts)
    for module in (projection, projection_cg):
        monkeypatch.setattr(module, "cpu_tuned", lambda device: False)
    with mock.patch.object(projection, "_one_thread_per_chunk", side_effect=AssertionError("a CPU route")):
        gpu_cold, gpu_info = project(x, polytope)
        gpu_warm, gpu_warm_info = project(moved, polytope, warm_start=gpu_info)
    for y, reached, found in ((cold, gpu_cold, gpu_info), (warm, gpu_warm, gpu_warm_info)):
        assert found.converged.all() and found.max_violation.max().item() <= TOL
        assert (reached - y).norm(dim=1).max() <= DIST


# -- independent parts (`projection_parts`) ---------------------------------------------------
def _chains_and_the_rest() -> Polytope:
    """A 4-beat chain (ranges, a tighter pin, volatility written both ways and scaled, a negated
    range), a 1-beat chain, and columns no chain can hold: a 3-column row, a 2-column row that is
    not a difference, a star of differences; the last column is free."""
    rows = [({0: 1}, 0, 1), ({1: 1}, 0, 1), ({2: 1}, 0, 1), ({3: 1}, 0, 1), ({1: 1}, -np.inf, 0.3),
            ({0: -1, 1: 1}, -0.2, 0.2), ({1: 1, 2: -1}, -0.1, 0.2), ({2: -2, 3: 2}, -0.4, 0.4),
            ({3: -1}, -0.9, 0), ({4: 1}, -1, 1), ({5: 1, 6: 1, 7: 1}, 1, np.inf), ({5: 1}, 0, 0.5),
            ({8: 2, 9: -1}, 0, 0.1), ({10: 1, 11: -1}, -0.1, 0.1), ({12: 1, 10: -1}, -0.1, 0.1)]
    A = [[row.get(j, 0.0) for j in range(14)] for row, _, _ in rows]
    return _tiny(A, [lo for _, lo, _ in rows], [hi for _, _, hi in rows])


def test_split_finds_the_chains():
    from storydiff.projection_parts import split
    from storydiff.projection_rows import build_scaled_rows

    parts = split(build_scaled_rows(_chains_and_the_rest(), torch.device("cpu")), least_columns=64)
    assert [p.columns.tolist() for p in parts] == [[5, 6, 7, 8, 9, 10, 11, 12], [[4]], [[0], [1], [2], [3]]]
    chain = parts[2]
    # position 1: the range's upper bound 1 gave way to the pin's 0.3; position 3's upper is the negated row's
    assert chain.upper[:4, 0].tolist() == [1.0, 0.3, 1.0, 0.9] and chain.row_upper[1, 0] == 4
    # differences as (y_{t+1} − y_t)/√2: the row written y1 − y2 ∈ [−0.1, 0.2] flips its bounds, 2·(y3 − y2) halves them
    assert torch.allclose(chain.upper[4:, 0] * 2**0.5, torch.tensor([0.2, 0.1, 0.2], dtype=torch.float64))
    assert torch.allclose(chain.lower[4:, 0] * 2**0.5, torch.full((3,), -0.2, dtype=torch.float64))


def test_a_part_takes_the_columns_and_bounds_its_full_gather_would_give():
    from storydiff.projection_parts import split, whole
    from storydiff.projection_rows import build_scaled_rows

    rows = build_scaled_rows(synthetic_scene(characters=2, beats=5, seed=0)[0], torch.device("cpu"))
    X = torch.randn(rows.n_columns, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    parts = [whole(rows), *split(rows, least_columns=1)]
    assert {p.chains > 1 for p in parts} == {True, False}
    for part in parts:
        gathered = part.gather(X)
        cols = torch.randperm(gathered.shape[1], generator=torch.Generator().manual_seed(1))[:5]
        assert torch.equal(part.take(X, cols), gathered[:, cols])
        if part.chains > 1:  # a chunk of the batch starts and ends within a chain's samples
            assert torch.equal(part.gather(X).view(-1, part.chains, 3)[:, 1, 2], X[part.columns[:, 1], 2])
            for index in (cols, torch.arange(2, 3 * part.chains - 1)):
                chain = index // 3
                assert all(torch.equal(b, full[:, chain]) for b, full in zip(part.bounds(index, 3),
                                                                            (part.lower, part.upper), strict=True))
            share_buffers()  # a chunk's bounds written into the thread's buffers: the same, in the same storage
            try:
                storage = set()
                for index in (torch.arange(2, 3 * part.chains - 1), torch.arange(4, 9)):
                    bounds = part.bounds(index, 3, reuse=True)
                    assert all(torch.equal(b, full[:, index // 3])
                               for b, full in zip(bounds, (part.lower, part.upper), strict=True))
                    storage.add(bounds[0].untyped_storage().data_ptr())
            finally:
                stop_sharing_buffers()
            assert len(storage) == 1
        into = torch.full((rows.n_columns, 2), float("nan"), dtype=torch.float64)
        part.scatter(gathered, slice(1, 3), into)  # samples 1 and 2 back in the polytope layout
        assert torch.equal(into[part.columns.reshape(-1)], X[part.columns.reshape(-1), 1:])


def test_split_solves_independent_pieces_apart_down_to_a_minimum_size(monkeypatch):
    """Pieces no row joins are parts of their own (a sample's characters settle apart); small ones share."""
    from storydiff import projection_parts
    from storydiff.projection_rows import build_scaled_rows

    polytope = _chains_and_the_rest()
    parts = projection_parts.split(build_scaled_rows(polytope, torch.device("cpu")), least_columns=3)
    # [5, 6, 7] is large enough alone; [8, 9] is not, so it takes [10, 11, 12] with it
    assert [p.columns.tolist() for p in parts[:2]] == [[5, 6, 7], [8, 9, 10, 11, 12]]
    monkeypatch.setattr(projection, "MIN_SPLIT_ENTRIES", 0)
    monkeypatch.setattr(projection_parts, "GROUP_ENTRIES", 12)  # at batch 6: pieces of 2 columns apart
    x = torch.tensor(np.random.default_rng(4).normal(0.5, 0.8, (6, 14)))
    y, info = project(x, polytope)
    assert len(info.parts) == 5 and info.converged.all()
    assert np.linalg.norm(y.numpy() - osqp_reference(polytope, x.numpy()), axis=1).max() <= DIST
    assert kkt_residual(polytope, x, y, info.multipliers()) <= TOL


def test_pieces_are_solved_apart_only_in_batches_large_enough_to_pay():
    """At batch 1 a pool of scenes stays in a few parts: one per character made it 12x slower."""
    from storydiff.projection_parts import GROUP_ENTRIES, group_columns

    assert group_columns(1) == GROUP_ENTRIES and group_columns(GROUP_ENTRIES) == 1
    assert group_columns(256) == GROUP_ENTRIES // 256 and group_columns(300) == group_columns(256)


@given(widths=st.lists(st.integers(1, 6), min_size=1, max_size=12), least=st.integers(1, 8))
def test_pieces_are_grouped_whole_each_row_once(widths, least):
    """Every row lands in exactly one group, no piece is cut, and only the last group may be under the minimum
    before it joins the one before it."""
    from scipy import sparse as sp

    from storydiff import projection_parts

    blocks = [sp.csr_matrix(np.ones((2, w)) + np.eye(2, w)) for w in widths]  # a connected piece of w columns
    A = sp.block_diag(blocks, format="csr")
    piece = np.repeat(np.arange(len(widths)), 2)
    groups = projection_parts._groups(A, np.arange(A.shape[0]), least)
    rows = np.concatenate(groups)
    assert np.array_equal(np.sort(rows), np.arange(A.shape[0]))
    assert all(not set(piece[g]) & set(piece[h]) for i, g in enumerate(groups) for h in groups[i + 1:])  # none cut
    widths_of = [sum(widths[p] for p in set(piece[g])) for g in groups]
    assert len(groups) == 1 or all(w >= least for w in widths_of)


@pytest.mark.parametrize("seed", range(3))
def test_split_matches_osqp_and_explains_by_the_right_rows(monkeypatch, seed):
    monkeypatch.setattr(projection, "MIN_SPLIT_ENTRIES", 0)
    polytope = _chains_and_the_rest()
    x = torch.tensor(np.random.default_rng(seed).normal(0.5, 0.8, (6, 14)))
    x[0, :4] = torch.tensor([0.9, 0.9, 0.9, 0.95], dtype=torch.float64)
    y, info = project(x, polytope)
    assert info.converged.all() and len(info.parts) == 3
    assert np.linalg.norm(y.numpy() - osqp_reference(polytope, x.numpy()), axis=1).max() <= DIST
    mu = info.multipliers()
    assert kkt_residual(polytope, x, y, mu) <= TOL
    assert torch.equal(y[:, 13], x[:, 13])  # the free column
    assert mu[0, 4] > 0 and mu[0, 1] == 0  # the pin holds beat 2 down, not the range


def test_split_warm_start_and_whole_agree(monkeypatch):
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=8)
    x = noisy(y0.numpy(), 12, 0.3, 8)
    whole, _ = project(x, polytope)
    monkeypatch.setattr(projection, "MIN_SPLIT_ENTRIES", 0)
    y, info = project(x, polytope)
    assert [part.chains > 1 for part in info.parts] == [False, True] and info.max_violation.max() <= TOL
    assert (y - whole).norm(dim=1).max() <= DIST
    assert kkt_residual(polytope, x, y, info.multipliers()) <= TOL
    again, warm = project(x, polytope, warm_start=info)
    assert (again - y).norm(dim=1).max() <= DIST and warm.iterations.sum() < info.iterations.sum()


def test_split_reports_crossed_bounds_on_one_variable(monkeypatch):
    monkeypatch.setattr(projection, "MIN_SPLIT_ENTRIES", 0)
    # a range 0 ≤ y0 ≤ 0.3 and a pin y0 ≥ 0.5: each row alone can hold, together none can
    polytope = _tiny([[1, 0], [1, 0], [0, 1]], [0.0, 0.5, 0.0], [0.3, np.inf, 1.0])
    y, info = project(torch.tensor([[0.4, 2.0], [0.1, 0.5]], dtype=torch.float64), polytope)
    assert not info.converged.any() and info.max_violation.min() > TOL
    assert torch.allclose(y[:, 1], torch.tensor([1.0, 0.5], dtype=torch.float64))


def test_chunks_size_by_entries_so_thin_parts_take_many_columns():
    from types import SimpleNamespace

    thin, tall = SimpleNamespace(m=19, n_columns=10), SimpleNamespace(m=27_000, n_columns=13_000)
    for device in (torch.device("cpu"), torch.device("cuda")):
        chunks = projection._chunks(200_000, device, thin, 1)
        assert chunks[0].stop - chunks[0].start > 20_000 and chunks[-1].stop == 200_000
        widest = projection._chunks(8192, device, tall, 1)
        assert max(c.stop - c.start for c in widest) <= (8192 if device.type == "cuda" else 1024)


def test_cpu_chunks_come_in_an_equal_share_per_thread():
    from types import SimpleNamespace

    cpu, general = torch.device("cpu"), SimpleNamespace(m=2818, n_columns=1370)  # the-wake's general part
    assert len(projection._chunks(1024, cpu, general, 1)) == 3  # cache-sized: 372 columns at most
    assert len(projection._chunks(1024, cpu, general, 2)) == 4
    assert len(projection._chunks(1024, cpu, general, 4)) == 4
    # threads only where each gets MIN_THREAD_ENTRIES of work: 2 of 16 here, or none for a tiny batch
    medium = 2 * projection.MIN_THREAD_ENTRIES // general.m + 1
    assert len(projection._chunks(medium, cpu, general, 16)) == 2
    assert len(projection._chunks(4, cpu, general, 16)) == 1


def test_new_bounds_on_the_same_matrix_reuse_its_scaling():
    from storydiff.projection_rows import scaled_rows

    polytope, y0 = random_polytope(3)
    shift = polytope.dense() @ torch.full((40,), 0.1, dtype=torch.float64)  # y0 + 0.1 is feasible in the moved set
    moved = Polytope(polytope.A, polytope.lower + shift, polytope.upper + shift, polytope.names, polytope.columns)
    first, second = (scaled_rows(p, torch.device("cpu")) for p in (polytope, moved))
    assert second.A64 is first.A64 and not torch.equal(second.lower, first.lower)
    x = noisy(y0, 4, 0.5, 3)
    y, info = project(x, moved)
    assert info.max_violation.max() <= TOL
    assert np.linalg.norm(y.numpy() - osqp_reference(moved, x.numpy()), axis=1).max() <= DIST
    crossed = moved.lower.clone()
    crossed[0] = moved.upper[0] + 1
    with pytest.raises(ValueError, match="row0"):
        project(x, Polytope(polytope.A, crossed, moved.upper, polytope.names, polytope.columns))
    free = moved.lower.clone(), moved.upper.clone()
    free[0][0], free[1][0] = -np.inf, np.inf  # row 0 can no longer bind: a different set of rows
    assert scaled_rows(Polytope(polytope.A, *free, polytope.names, polytope.columns),
                       torch.device("cpu")).m == first.m - 1


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 300), width=st.integers(1, 700), reduce=st.sampled_from(["amax", "amin", "any", "all"]),
       transposed=st.booleans(), seed=st.integers(0, 2**16))
def test_over_rows_is_the_reduction_over_dim_0(rows, width, reduce, transposed, seed):
    """Folded or not (narrow, wide, rows not a multiple of the fold, strided), the same as ATen's."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(width, rows, generator=g, dtype=torch.float64).T if transposed else \
        torch.randn(rows, width, generator=g, dtype=torch.float64)
    if reduce in ("any", "all"):
        t = t > 1.0 if reduce == "any" else t > -1.0
    assert torch.equal(over_rows(getattr(torch, reduce), t), getattr(torch, reduce)(t, dim=0))


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_copy_columns_writes_the_chosen_columns_of_a_window_and_leaves_the_rest(width, seed):
    """Any pattern of chosen columns (none, all, runs at either edge) into a window of a wider answer."""
    g = torch.Generator().manual_seed(seed)
    answer = torch.randn(7, width + 5, generator=g, dtype=torch.float64)
    values = torch.randn(7, width, generator=g, dtype=torch.float64)
    where = torch.rand(width, generator=g) < torch.rand(1, generator=g)
    expected = answer.clone()
    expected[:, 2:2 + width][:, where] = values[:, where]
    copy_columns(answer[:, 2:2 + width], values, where)
    assert torch.equal(answer, expected)


@pytest.mark.parametrize("kind", ["scene", "boxes only", "no boxes"])
def test_newton_matrix_sums_one_variable_rows_on_the_diagonal(kind):
    from storydiff.projection_alm import _NewtonMatrix
    from storydiff.projection_rows import build_scaled_rows

    if kind == "scene":
        polytope, _ = synthetic_scene(characters=2, beats=4, seed=3)
    elif kind == "boxes only":  # two rows on column 0 (a range and a pin), one on column 2
        polytope = _tiny([[2, 0, 0], [-1, 0, 0], [0, 0, 3]], [0.0, -1.0, 0.0], [1.0, 1.0, 1.0])
    else:
        polytope = _tiny([[1, 1, 0], [0, 1, -1]], [0.0, 0.0], [1.0, 1.0])
    rows = build_scaled_rows(polytope, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    D = (torch.rand(rows.m, 5, generator=g) < 0.5).float() * 30.0
    p = torch.randn(rows.n_columns, 5, generator=g)
    A = rows.A64.to_dense()
    expected = torch.stack([(torch.eye(A.shape[1], dtype=torch.float64) + A.T @ torch.diag(D[:, j].double()) @ A)
                            @ p[:, j].double() for j in range(5)], dim=1)
    out = torch.empty_like(p)
    operator = _NewtonMatrix(rows, D)
    operator(p, out)
    assert torch.allclose(out.double(), expected, atol=1e-4)
    operator.keep(torch.tensor([4, 1]))  # columns dropped as CG compacts
    operator(p[:, [4, 1]].contiguous(), out[:, :2])
    assert torch.allclose(out[:, :2].double(), expected[:, [4, 1]], atol=1e-4)


@pytest.mark.parametrize("L", [2, 3, 24])
def test_chain_newton_step_is_the_exact_tridiagonal_solve(L):
    from storydiff.projection_alm import _path_solve
    from storydiff.projection_parts import _path
    from storydiff.projection_rows import build_scaled_rows

    polytope, _ = synthetic_scene(characters=1, beats=2, seed=0)
    path = _path(L, build_scaled_rows(polytope, torch.device("cpu")), torch.device("cpu"))
    g = torch.Generator().manual_seed(L)
    D = (torch.rand(2 * L - 1, 6, generator=g) < 0.5).float() * 300.0  # rows on and off, as in a Newton step
    rhs = torch.randn(L, 6, generator=g)
    A = path.A64.to_dense()
    d = _path_solve(D, rhs)
    for j in range(6):
        M = torch.eye(L, dtype=torch.float64) + A.T @ torch.diag(D[:, j].double()) @ A
        assert torch.allclose(d[:, j].double(), torch.linalg.solve(M, rhs[:, j].double()), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_scenes_hold_display_rules_and_caps_as_compiled_scenes_do(seed):
    """Display rows bound at 0 and each cap one value at every beat, as `constraints` writes them: bounds widened
    off those values to fit the known point would make vertices (rows a hair apart at 0) no real scene has."""
    polytope, y0 = synthetic_scene(characters=3, beats=6, seed=seed)
    assert float(polytope.violation(y0.unsqueeze(0))) == 0.0
    caps: dict[str, set[float]] = {}
    for name, lower, upper in zip(polytope.names, polytope.lower.tolist(), polytope.upper.tolist(), strict=True):
        if ".display." in name:
            assert {lower, upper} <= {0.0, float("inf"), float("-inf")}, name
        if ".range.felt." in name:
            caps.setdefault(name.rpartition("@")[0], set()).add(upper)
    assert all(len(values) == 1 for values in caps.values()) and {0.0, 1.0} < set().union(*caps.values())
