"""Solver buffers shared chunk after chunk on one thread: reused by the same solver, never by another."""
from __future__ import annotations

import threading

import torch

from storydiff import projection
from storydiff.projection import project
from storydiff.projection_cg import BufferPool, share_buffers, stop_sharing_buffers
from storydiff.projection_synthetic import synthetic_scene

CPU = torch.device("cpu")


def test_a_thread_sharing_buffers_hands_one_solvers_storage_to_the_next_of_its_kind_only():
    stop_sharing_buffers()  # what an earlier projection on this thread kept
    share_buffers()
    try:
        first = BufferPool(CPU, 8, "chains")("x", 5, torch.float64)
        again = BufferPool(CPU, 6, "chains")("x", 5, torch.float64)  # the next chunk, a little smaller
        other = BufferPool(CPU, 8, "active set")("x", 5, torch.float64)
        bigger = BufferPool(CPU, 20, "chains")("x", 5, torch.float64)
    finally:
        stop_sharing_buffers()
    assert again.data_ptr() == first.data_ptr() and again.shape == (5, 6)
    assert other.data_ptr() != first.data_ptr()  # another solver may be alive beside it
    assert bigger.data_ptr() != first.data_ptr() and bigger.shape == (5, 20)  # grown, not overrun
    alone = BufferPool(CPU, 8, "chains")("x", 5, torch.float64)
    assert alone.data_ptr() not in (first.data_ptr(), bigger.data_ptr())  # sharing has ended


def test_sharing_is_per_thread():
    share_buffers()
    try:
        here = BufferPool(CPU, 8, "chains")("x", 5, torch.float64)
        there: list[torch.Tensor] = []
        worker = threading.Thread(target=lambda: there.append(BufferPool(CPU, 8, "chains")("x", 5, torch.float64)))
        worker.start()
        worker.join()
    finally:
        stop_sharing_buffers()
    assert there[0].data_ptr() != here.data_ptr()


def test_many_chunks_on_one_thread_match_one_chunk_cold_and_warm(monkeypatch):
    polytope, y0 = synthetic_scene(characters=2, beats=6, seed=3)
    g = torch.Generator().manual_seed(3)
    xs = [y0 + 0.3 * torch.randn(40, y0.numel(), generator=g, dtype=torch.float64)]
    xs.append(xs[0] + 0.01 * torch.randn(xs[0].shape, generator=g, dtype=torch.float64))
    whole = [project(xs[0], polytope)]
    whole.append(project(xs[1], polytope, warm_start=whole[0][1]))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        monkeypatch.setattr(projection, "CPU_CHUNK_ENTRIES", 1)  # 32 samples a chunk, chunk after chunk
        monkeypatch.setattr(projection, "MIN_SPLIT_ENTRIES", 1)  # split into chain and general parts
        cold = project(xs[0], polytope)
        warm = project(xs[1], polytope, warm_start=cold[1])
    finally:
        torch.set_num_threads(before)
    for (y, info), (y_whole, _) in zip((cold, warm), whole, strict=True):
        assert info.converged.all() and info.max_violation.max() <= 1e-6
        assert (y - y_whole).norm(dim=1).max() <= 1e-5


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("storydiff-projection")]


def test_kept_threads_and_buffers_carry_nothing_from_one_call_to_the_next(monkeypatch):
    """The worker threads and their buffers outlive a call; a call on another scene in between, or freeing
    them, changes no answer, bit for bit."""
    first, y_first = synthetic_scene(characters=2, beats=6, seed=3)
    other, y_other = synthetic_scene(characters=3, beats=5, seed=4)
    g = torch.Generator().manual_seed(5)
    x = y_first + 0.3 * torch.randn(96, y_first.numel(), generator=g, dtype=torch.float64)
    x_other = y_other + 0.3 * torch.randn(96, y_other.numel(), generator=g, dtype=torch.float64)
    before = torch.get_num_threads()
    monkeypatch.setattr(projection, "CPU_CHUNK_ENTRIES", 1)  # 32 samples a chunk
    monkeypatch.setattr(projection, "MIN_THREAD_ENTRIES", 1)
    torch.set_num_threads(2)
    try:
        y, info = project(x, first)
        assert _workers(), "the chunks ran on the kept worker threads"
        project(x_other, other)
        again, info_again = project(x, first)
        warm, _ = project(x + 0.01, first, warm_start=info)
        warm_again, _ = project(x + 0.01, first, warm_start=info_again)
        projection.release_buffers()
        for worker in _workers():
            worker.join(timeout=10)
        assert not _workers()
        fresh, _ = project(x, first)
    finally:
        torch.set_num_threads(before)
        projection.release_buffers()
    assert info.converged.all() and info.max_violation.max() <= 1e-6
    assert torch.equal(y, again) and torch.equal(y, fresh) and torch.equal(warm, warm_again)
