"""Projected samplers: feasibility on every sampler, determinism, pause/resume, edits and pins."""
from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import torch

import storydiff
from storydiff.denoiser import Denoiser, DenoiserConfig
from storydiff.engine import Engine
from storydiff.errors import StorydiffError
from storydiff.models import Pin
from storydiff.progress import SampleProgress
from storydiff.render import regenerate_command
from storydiff.sampling import SAMPLERS, ddim_sigmas, karras_sigmas, network_evaluations, tolerance

LIBRARY = Path(__file__).resolve().parents[1] / "characters"


@pytest.fixture(scope="module")
def engine() -> Engine:
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(width=32, depth=1, heads=2))
    for p in model.parameters():  # a random but not trivial network: adaLN-zero starts as identity
        torch.nn.init.normal_(p, std=0.05)
    return Engine(model, {"hash": "test"}, torch.device("cpu"))


@pytest.fixture(scope="module")
def storm():
    cast = storydiff.load_characters(LIBRARY)
    return storydiff.load_situation(LIBRARY / "situations" / "storm.situation.xml", cast)


def final(engine: Engine, run, **kw):
    last = None
    for last in engine.denoise(run, **kw):
        pass
    return last


def test_schedules_end_at_zero_and_decrease():
    for sigmas in (karras_sigmas(10, 0.002, 10.0), ddim_sigmas(10, 0.002, 10.0)):
        assert sigmas[-1] == 0.0 and len(sigmas) == 11
        assert all(a > b for a, b in pairwise(sigmas))
        assert sigmas[0] == pytest.approx(10.0, rel=1e-6)
    assert network_evaluations("heun", 6) == 11


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_ends_inside_the_constraint_set(engine, storm, sampler):
    run = engine.prepare(storm, n=3, seed=1, steps=5, sampler=sampler)
    step = final(engine, run)
    flat = run.layout.flatten(step.projected.double())
    assert float(run.polytope.violation(flat).max()) <= 1e-6
    assert step.last


def test_without_projection_the_network_output_leaves_the_set(engine, storm):
    run = engine.prepare(storm, n=4, seed=1, steps=5, project=False)
    step = final(engine, run)
    assert float(run.polytope.violation(run.layout.flatten(step.projected.double())).max()) > 1e-3


def test_same_seed_same_scene_bit_for_bit(engine, storm):
    a = engine.sample(storm, n=2, seed=7, steps=4)
    b = engine.sample(storm, n=2, seed=7, steps=4)
    c = engine.sample(storm, n=2, seed=8, steps=4)
    assert [s.vector() for s in a] == [s.vector() for s in b]
    assert a[0].vector() != c[0].vector()


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_resume_without_edits_gives_the_uninterrupted_scene(engine, storm, sampler):
    options = {"n": 2, "seed": 3, "steps": 6, "sampler": sampler}
    run = engine.prepare(storm, **options)
    straight = final(engine, run)
    paused = None
    for step in engine.denoise(run):
        if step.index == 2:
            paused = step
            break
    assert torch.equal(final(engine, run, resume=paused).projected, straight.projected)
    # from the situation: the resumed run compiles its polytope afresh and re-projects
    recompiled = final(engine, storm, resume=paused, **options)
    assert torch.equal(recompiled.projected, straight.projected) and torch.equal(recompiled.x_t, straight.x_t)
    for other in ({"n": 3}, {"steps": 12}, {}):  # another batch, another schedule, the defaults
        with pytest.raises(StorydiffError, match="comes from another run"):
            final(engine, storm, resume=paused, **{**options, **other} if other else {})


@pytest.mark.parametrize("bad, message", [
    ({"n": 2.5}, "n must be a whole number"), ({"steps": 0}, "steps must be"), ({"seed": None}, "seed must be"),
    ({"seed": 2**70}, "seed must be"), ({"guidance": float("nan")}, "guidance must be a finite number"),
])
def test_bad_options_are_one_clear_error(engine, storm, bad, message):
    with pytest.raises(StorydiffError, match=message):
        engine.sample(storm, **bad)


def test_a_story_or_a_nan_pin_is_refused_clearly(engine):
    from pydantic import ValidationError

    cast = storydiff.load_characters(LIBRARY)
    story = storydiff.load_story(LIBRARY / "stories" / "saltmarsh.story.xml", cast)
    with pytest.raises(StorydiffError, match="got Story .a story: use sample_story"):
        engine.sample(story)
    with pytest.raises(ValidationError, match="finite number"):
        Pin(var="mara.felt.anger@2", equal=float("nan"))


def test_tolerance_is_loose_early_and_exact_on_the_last_step():
    tols = [tolerance(i, 8) for i in range(8)]
    assert tols[0] == pytest.approx(1e-3) and tols[-1] == 1e-6
    assert all(a > b for a, b in pairwise(tols))
    assert tolerance(0, 1) == 1e-6  # a one-step run is all last step


def test_edit_is_kept_and_scene_stays_feasible(engine, storm):
    run = engine.prepare(storm, n=1, seed=3, steps=6)
    paused = next(s for s in engine.denoise(run) if s.index == 2)
    name = "ilan.shown.hope@2"
    column = run.layout.index(name)
    unedited = run.layout.flatten(final(engine, run).projected.double())[0, column].item()
    target = 0.3 if abs(unedited - 0.3) > 0.1 else 0.6
    resumed = final(engine, run, resume=paused, edits={name: target})
    flat = run.layout.flatten(resumed.projected.double())
    assert flat[0, column].item() == pytest.approx(target, abs=1e-6)
    assert float(run.polytope.violation(flat).max()) <= 1e-6


def test_pins_are_honoured_exactly(engine, storm):
    pins = [Pin(var="ilan.felt.fear@4", min=0.6), Pin(var="mara.mood.pleasure@6", equal=-0.3)]
    scene = engine.sample(storm, n=1, seed=2, steps=5, pins=pins)[0]
    assert scene.cell("ilan", 4).felt["fear"] >= 0.6 - 1e-6
    assert scene.cell("mara", 6).mood["pleasure"] == pytest.approx(-0.3, abs=1e-6)


def test_pin_added_on_resume_is_honoured_exactly(engine, storm):
    options = {"n": 2, "seed": 4, "steps": 6}
    paused = next(s for s in engine.denoise(storm, **options) if s.index == 2)
    pin = Pin(var="mara.felt.fear@5", equal=0.35)
    run = engine.prepare(storm, pins=[pin], **options)
    flat = run.layout.flatten(final(engine, storm, resume=paused, pins=[pin], **options).projected.double())
    assert torch.allclose(flat[:, run.layout.index(pin.var)], torch.full((2,), 0.35, dtype=torch.float64), atol=1e-6)
    assert float(run.polytope.violation(flat).max()) <= 1e-6


def test_guidance_strength_changes_the_scene_and_it_stays_feasible(engine, storm):
    runs = {w: engine.prepare(storm, n=2, seed=6, steps=4, guidance=w) for w in (1.0, 3.0)}
    flats = {w: run.layout.flatten(final(engine, run).projected.double()) for w, run in runs.items()}
    assert not torch.allclose(flats[1.0], flats[3.0], atol=1e-4)
    assert all(float(runs[w].polytope.violation(f).max()) <= 1e-6 for w, f in flats.items())


def test_batched_scenes_differ_from_one_another(engine, storm):
    a, b, c = engine.sample(storm, n=3, seed=9, steps=3)
    assert a.vector() != b.vector() != c.vector() and a.vector() != c.vector()


@pytest.mark.slow
def test_story_carries_stance_over_and_reports_progress_per_scene(engine):
    import io

    from storydiff.affect import STANCE_STEP
    from storydiff.engine import carry_over

    cast = storydiff.load_characters(LIBRARY)
    story = storydiff.load_story(next((LIBRARY / "stories").glob("*.story.xml")), cast)
    # the commissioner's rooms, then the inquiry: dray and ansel are in both, stance carries over
    story = story.model_copy(update={"scenes": story.scenes[3:5], "situations": story.situations[3:5]})
    stream = io.StringIO()
    bar = SampleProgress(stream, len(story.scenes), steps=1)
    scenes = engine.sample_story(story, cast, seed=1, steps=1, progress=bar)
    bar.close()
    assert len(scenes) == len(story.scenes)
    assert [(s.provenance.story, s.provenance.part, s.provenance.seed) for s in scenes] == [(story.id, 0, 1),
                                                                                         (story.id, 1, 1)]
    assert f"storydiff sample <{story.id}.story.xml> --seed 1 " in regenerate_command(scenes[1].provenance)
    checked = 0
    for (before, after), part in zip(pairwise(scenes), story.scenes[1:]):
        if "stance" not in part.carry:
            continue
        for name, value in carry_over(before, ["stance"]).items():
            character, _, other, item = name.split(".")
            if character in after.cast and other in after.cast:
                assert abs(after.cell(character, 1).stance[other][item] - value) <= STANCE_STEP + 1e-6, name
                checked += 1
    assert checked > 0
    out = stream.getvalue()
    assert "scene 2/2" in out and out.endswith("1/1 steps\n")


def test_infeasible_pin_fails_before_sampling_with_the_conflict_named(engine, storm):
    with pytest.raises(StorydiffError, match="shame"):
        engine.sample(storm, n=1, seed=0, steps=3, pins=[Pin(var="mara.felt.shame@2", min=0.5)])


def test_scene_carries_provenance_and_vector_matches_columns(engine, storm):
    scene = engine.sample(storm, n=1, seed=5, steps=3, sampler="euler")[0]
    assert scene.provenance.seed == 5 and scene.provenance.sampler == "euler" and scene.provenance.checkpoint == "test"
    run = engine.prepare(storm)
    assert len(scene.vector()) == len(run.polytope.columns)


def test_sample_command_writes_json_and_refuses_bad_input(tmp_path, capsys):
    from storydiff.cli import main
    from storydiff.export import from_json

    situation = str(LIBRARY / "situations" / "storm.situation.xml")
    out = tmp_path / "storm.json"
    assert main(["sample", situation, "-n", "2", "--steps", "3", "--seed", "4", "--format", "json", "-o", str(out)]) == 0
    scenes = from_json(out.read_text())
    assert len(scenes) == 2 and scenes[0].provenance.seed == 4
    assert main(["sample", situation, "-n", "0"]) == 2
    assert main(["sample", str(tmp_path / "missing.xml")]) == 2
    assert main(["sample", situation, "--sampler", "rk45"]) == 2
    assert main(["sample", situation, "-o", str(tmp_path / "nowhere" / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "must be at least 1" in err and "no such file" in err and "Traceback" not in err
    assert "nowhere/x.json: no such folder to write in" in err


def test_progress_goes_to_stderr_and_leaves_stdout_alone(capsys):
    from storydiff.cli import main

    situation = str(LIBRARY / "situations" / "storm.situation.xml")
    argv = ["sample", situation, "--steps", "3", "--seed", "1", "--format", "json"]
    assert main([*argv, "--no-progress"]) == 0
    quiet = capsys.readouterr()
    assert main([*argv, "--progress"]) == 0
    shown = capsys.readouterr()
    assert main(argv) == 0  # stderr is not a terminal here: no bar by default
    default = capsys.readouterr()
    assert shown.out == quiet.out == default.out
    assert quiet.err == default.err == ""
    assert "3/3 steps" in shown.err and shown.err.endswith("\n") and "[" in shown.err
