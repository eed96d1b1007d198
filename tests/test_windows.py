"""Scenes longer than the network learnt: overlapping windows, blended, projected whole."""
from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest
import torch

from storydiff.denoiser import DenoiserConfig
from storydiff.loader import bundled_library, load_characters, load_situation
from storydiff.models import Pin
from storydiff.windows import beat_windows, denoise_in_windows, overlap_for

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def storm():
    library = bundled_library()
    return load_situation(library / "situations" / "storm.situation.xml", load_characters(library))


@pytest.mark.parametrize("beats, size", [(24, 24), (25, 24), (64, 24), (130, 24), (65, 64), (7, 24)])
def test_windows_cover_the_scene_each_within_size_neighbours_overlapping(beats, size):
    overlap = overlap_for(size)
    windows = beat_windows(beats, size, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == beats
    assert all(stop - start == min(size, beats) for start, stop in windows)
    assert all(a_start < b_start <= a_stop - overlap for (a_start, a_stop), (b_start, _) in
               pairwise(windows))


def test_each_window_is_told_its_own_beats_and_the_blend_keeps_what_all_windows_agree_on(engine, storm):
    """A denoiser that answers beat by beat (x's own value plus what the condition says of that
    beat) must come out of the windows unchanged: a wrong slice or a blend whose weights do not
    sum to one would show."""
    long = storm.model_copy(update={"beats": 70})
    run = engine.prepare(long, n=2)
    x = torch.randn(2, *run.layout.shape)

    def beatwise(x: torch.Tensor, sigma: torch.Tensor, cond) -> torch.Tensor:
        events = cond.events.sum(-1, keepdim=True)[:, : x.shape[1]]
        return 0.5 * x + events + cond.limits[:, : x.shape[1], :, :1]

    whole = beatwise(x, torch.ones(2), run.condition)
    assert float(run.condition.events.abs().sum()) > 0  # storm's events land in the first window
    windowed = denoise_in_windows(beatwise, x, torch.ones(2), run.condition, size=24)
    assert torch.allclose(windowed, whole, atol=1e-6)


def test_a_scene_longer_than_the_network_samples_inside_its_set_with_late_pins_held(engine, storm):
    late = Pin(var="mara.felt.anger@75", min=0.5)
    long = storm.model_copy(update={"beats": 80, "pins": [*storm.pins, late]})
    run = engine.prepare(long, n=2, steps=4, sampler="euler")
    last = None
    for last in engine.denoise(run):
        pass
    flat = run.layout.flatten(last.projected.double())
    assert last.projected.shape[2] == 80
    assert float(run.polytope.violation(flat).max()) <= 1e-6
    assert float(flat[:, run.layout.index("mara.felt.anger@75")].min()) >= 0.5 - 1e-6


def _jitter(engine, situation, beats: int) -> tuple[float, float]:
    """Mean absolute change per beat of the sampled scene's values over beats 10-24, and 30 on."""
    run = engine.prepare(situation.model_copy(update={"beats": beats}), n=4, seed=3)
    last = None
    for last in engine.denoise(run):
        pass
    change = (last.projected[:, :, 1:] - last.projected[:, :, :-1]).abs().mean(dim=(0, 1, 3))
    return float(change[10:23].mean()), float(change[30:].mean())


def test_past_its_longest_training_scene_the_network_is_windowed_and_does_not_jitter(engine, storm):
    assert engine.model.config.window_beats == 24  # the bundled network learnt scenes of up to 24 beats
    early, late = _jitter(engine, storm, 48)
    assert late < 1.5 * early
    plain = replace(engine.model.config, trained_beats=None)  # what it did before: one 48-beat window
    assert plain.window_beats == DenoiserConfig().max_beats
    engine.model.config, config = plain, engine.model.config
    try:
        early, late = _jitter(engine, storm, 48)
    finally:
        engine.model.config = config
    assert late > 3 * early
