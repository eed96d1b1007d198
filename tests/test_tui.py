"""The writer's TUI driven through Textual's Pilot, on the real engine and the bundled checkpoint (CPU).

Each test waits on the app's own workers and message queue (`settle`, `until`),
never on a blind sleep. Runs are a few steps long so the whole file stays quick.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console
from storydiff.tui.app import StorydiffApp
from storydiff.tui.dialogs import ErrorDialog, ExportDialog, FormDialog
from storydiff.tui.inspector import bar
from storydiff.tui.palette import GLYPHS
from storydiff.tui.session import Session
from storydiff.tui.sources import demo_situation, open_target
from textual.widgets import RadioButton

from storydiff.engine import Engine
from storydiff.loader import bundled_library, load_characters, load_situation
from storydiff.models import Pin

SIZE = (120, 40)
STEPS = 5

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def storm():
    library = bundled_library()
    return load_situation(library / "situations" / "storm.situation.xml", load_characters(library))


def make_app(engine: Engine, tmp_path: Path, target=None, **options) -> StorydiffApp:
    options = {"steps": STEPS, "pace": 0.0, "paused": True, "draft_path": tmp_path / "storm.draft.json",
               **options}
    return StorydiffApp(engine, target, **options)


async def settle(pilot) -> None:
    """Let running workers finish and every message they posted be handled."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def until(pilot, condition, timeout: float = 60.0) -> None:
    """Process events until `condition()` holds (fails after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.02)


async def steps(pilot, n: int) -> None:
    for _ in range(n):
        await pilot.press("n")
        await settle(pilot)


async def run_to_end(pilot) -> None:
    await pilot.press("space")
    await until(pilot, lambda: pilot.app.session.finished)
    await settle(pilot)


def rendered(widget) -> str:
    """The plain text a Static widget shows."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def notices(app: StorydiffApp) -> list[str]:
    """The notifications on screen, as plain text (shown only with `run_test(notifications=True)`)."""
    return [str(toast.render()) for toast in app.screen.query("Toast")]


def strip_text(app: StorydiffApp) -> str:
    return rendered(app.query_one("#strip"))


def reference_steps(engine: Engine, situation, n_steps: int = STEPS, **options):
    run = engine.prepare(situation, seed=0, steps=n_steps, **options)
    return run, list(engine.denoise(run))


async def type_into(pilot, field_id: str, text: str, keys: bool = False) -> None:
    """Fill an input of the open dialog, key by key when `keys`."""
    field = pilot.app.screen.query_one(f"#{field_id}")
    field.value = ""
    field.focus()
    if keys:
        await pilot.press(*text)
    else:
        field.value = text


# ---------------------------------------------------------------- running, pausing, stepping

async def test_run_then_pause_stops_the_step_counter(engine, tmp_path):
    app = make_app(engine, tmp_path, steps=40, pace=0.05, paused=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.session.trace) >= 2)
        assert app.state == "running"
        await pilot.press("space")
        await settle(pilot)
        stopped = len(app.session.trace)
        assert app.state == "paused" and not app.running
        await pilot.pause(0.3)
        await settle(pilot)
        assert len(app.session.trace) == stopped < 40
        assert f"step {stopped}/40" in strip_text(app)
        assert "paused" in strip_text(app)


async def test_an_80_column_terminal_shows_every_beat_and_the_main_keys(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await steps(pilot, 1)
        assert not app.query_one("#left").display  # the cast panel folds away below 120 columns
        assert app.grid.region.width >= 8 * 6  # storm's 8 beats, 6 columns a cell
        shown = {key.description for key in app.query("FooterKey") if 0 < key.region.right <= 80}
        assert {"Run/Pause", "Step", "Pin", "Edit", "Undo", "Resample", "Export", "Save", "Quit"} <= shown


async def test_n_takes_exactly_one_step(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.state == "ready" and f"step 0/{STEPS}" in strip_text(app)
        await steps(pilot, 1)
        assert app.session.step.index == 0 and f"step 1/{STEPS}" in strip_text(app)
        await steps(pilot, 1)
        assert app.session.step.index == 1 and app.state == "paused"


async def test_steps_match_an_uninterrupted_run(engine, tmp_path, storm):
    _, reference = reference_steps(engine, storm)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        await run_to_end(pilot)
        assert torch.equal(app.session.step.projected, reference[-1].projected)
        assert [t.distance for t in app.session.trace] == [float(s.distance[0]) for s in reference]


async def test_inspector_shows_the_engines_state(engine, tmp_path, storm):
    run, reference = reference_steps(engine, storm)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        await pilot.press("down", "right", "right")
        assert app.grid.selected == ("ilan", 3)
        expected = engine.scenes(run, reference[1])[0].cell("ilan", 3)
        assert app.inspector.cell == expected
        shown = rendered(app.inspector)
        emotion, _ = expected.dominant("shown")
        assert f"{expected.felt[emotion]:.2f}" in shown and f"{expected.shown[emotion]:.2f}" in shown
        assert f"{expected.mood['pleasure']:+.2f}" in shown
        assert "pin:ilan.felt.shame>=0.5@3" in shown
        assert expected.behaviour_text.split()[0] in shown


async def test_resample_and_step_count_restart_the_run(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 1)
        await pilot.press("r")
        await until(pilot, lambda: app.session.finished)
        await settle(pilot)
        assert app.session.seed == 1
        await pilot.press("minus")
        await until(pilot, lambda: app.session.finished)
        await settle(pilot)
        assert app.session.steps == STEPS - 1 and len(app.session.trace) == STEPS - 1
        await pilot.press("u", "u")
        await settle(pilot)
        assert (app.session.seed, app.session.steps, len(app.session.trace)) == (0, STEPS, 1)


# ---------------------------------------------------------------- pins and edits

async def open_dialog(pilot, key: str) -> FormDialog:
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(pilot.app.screen, FormDialog)
    return pilot.app.screen


async def submit(pilot, variable: str, value: str, keys: bool = False) -> None:
    await type_into(pilot, "field-var", variable, keys)
    await type_into(pilot, "field-value", value, keys)
    await pilot.press("enter")
    await pilot.pause()


async def test_pin_then_resume_honours_the_pin(engine, tmp_path, storm):
    _, reference = reference_steps(engine, storm)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        await pilot.press("right")
        assert app.grid.selected == ("mara", 2)
        await open_dialog(pilot, "p")
        await submit(pilot, "felt.joy", ">=0.6", keys=True)
        assert not isinstance(app.screen, FormDialog)
        assert [p.var for p in app.session.pins] == ["mara.felt.joy@2"]
        assert app.session.step.index == 1 and app.state == "paused"
        assert "*mara.felt.joy@2 ≥ 0.6" in rendered(app.query_one("#situation"))
        assert "* mara.felt.joy@2 ≥ 0.6" in rendered(app.inspector)
        await run_to_end(pilot)
        scene = app.session.scene()
        assert scene.cell("mara", 2).felt["joy"] >= 0.6 - 1e-6
        assert not torch.equal(reference[-1].projected, app.session.step.projected)
        assert torch.equal(app.session.history[1].x_t, reference[1].x_t)


async def test_pin_dialog_reports_bad_input_inline(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 1)
        dialog = await open_dialog(pilot, "p")
        for variable, value, problem in [("felt.anger", "lots", "'lots' is not a number"),
                                         ("felt.anger", "1.5", "outside felt's range 0..1"),
                                         ("felt.sulk", "0.5", "'sulk' is not a felt item"),
                                         ("felt.anger", "0.6..0.2", "is empty"),
                                         ("odile.felt.anger", "0.5", "no variable")]:
            await submit(pilot, variable, value)
            assert app.screen is dialog
            assert problem in rendered(dialog.query_one("#message"))
        assert app.session.pins == []
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FormDialog)


async def test_infeasible_pin_is_refused_naming_the_constraint(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 1)
        before = app.session.snapshot()
        dialog = await open_dialog(pilot, "p")
        await submit(pilot, "felt.shame", ">=0.6")
        message = rendered(dialog.query_one("#message"))
        assert app.screen is dialog
        assert "Refused" in message and "mara.range.felt.shame.never" in message
        assert app.session.snapshot() == before and app.session.undo_stack == []


async def test_edit_undo_and_redo(engine, tmp_path, storm):
    run, reference = reference_steps(engine, storm)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        await open_dialog(pilot, "e")
        await submit(pilot, "mood.pleasure", "0.8")
        assert [(e.var, e.value, e.at) for e in app.session.edits] == [("mara.mood.pleasure@1", 0.8, 1)]
        await steps(pilot, 1)
        edited = app.session.scene().cell("mara", 1).mood["pleasure"]
        assert edited > engine.scenes(run, reference[2])[0].cell("mara", 1).mood["pleasure"]
        await pilot.press("u")
        await settle(pilot)
        assert app.session.edits == [] and app.session.step.index == 1
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert len(app.session.edits) == 1 and app.session.step.index == 2


def take(session: Session, n: int) -> None:
    for _, step in zip(range(n), session.iterator(), strict=False):
        session.accept(step)


def twin(engine: Engine, change) -> Session:
    """What the app should reach, without it: two steps, `change(session)`, one more step."""
    session = Session(engine, open_target(demo_situation()), steps=STEPS)
    take(session, 2)
    change(session)
    take(session, 1)
    return session


async def resumes_as_twin(pilot, engine: Engine, change) -> None:
    """One step on from the app's pause lands where `twin(engine, change)` does, scene included."""
    app = pilot.app
    await steps(pilot, 1)
    assert torch.equal(app.session.step.projected, twin(engine, change).step.projected)
    plain = engine.scenes(app.session.run, app.session.step)[0]
    assert app.session.scene() == plain.model_copy(update={"provenance": plain.provenance.model_copy(
        update={"drafted": True})})  # the writer's change: no CLI call repeats the scene


async def test_an_edit_while_paused_shows_at_once_and_applies_on_resume(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        before = app.session.scene().cell("mara", 1)
        emotion = min(before.shown, key=before.shown.get)  # the least shown: edited, it is the one on the grid
        await open_dialog(pilot, "e")
        await submit(pilot, f"shown.{emotion}", "0.95")
        assert app.session.step.index == 1 and app.state == "paused"
        assert app.inspector.cell.shown[emotion] == 0.95
        shown = rendered(app.inspector)
        assert f"  shown {bar(0.95)} 0.95" in shown and f"* mara.shown.{emotion}@1 = 0.95" in shown
        cell = app.grid.get_cell("mara", "1")
        assert cell.plain.startswith(f" {GLYPHS[emotion]}.95")
        assert any("italic" in str(span.style) for span in cell.spans)
        await resumes_as_twin(pilot, engine, lambda s: s.edit(f"mara.shown.{emotion}@1", 0.95))


async def test_a_pin_while_paused_shows_at_once_and_is_honoured_on_resume(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        await pilot.press("right")
        assert app.grid.selected == ("mara", 2) and app.session.scene().cell("mara", 2).shown["fear"] < 0.7
        await open_dialog(pilot, "p")
        await submit(pilot, "shown.fear", ">=0.7")
        assert app.session.step.index == 1 and app.state == "paused"
        assert app.inspector.cell.shown["fear"] == pytest.approx(0.7)
        assert f"  shown {bar(0.7)} 0.70" in rendered(app.inspector)
        cell = app.grid.get_cell("mara", "2")
        assert cell.plain.startswith(f" {GLYPHS['fear']}.70")
        assert any("underline" in str(span.style) for span in cell.spans)
        await resumes_as_twin(pilot, engine, lambda s: s.pin(Pin(var="mara.shown.fear@2", min=0.7)))


async def test_delete_unpins_the_selected_cell_and_undo_restores(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 1)
        await open_dialog(pilot, "p")
        await submit(pilot, "felt.joy", "0.3")
        await open_dialog(pilot, "p")
        await submit(pilot, "mood.arousal", ">=0.1")
        assert len(app.session.pins) == 2
        await pilot.press("delete")
        assert app.session.pins == []
        await pilot.press("u")
        assert [p.var for p in app.session.pins] == ["mara.felt.joy@1", "mara.mood.arousal@1"]


async def test_pin_on_a_finished_scene_revises_it(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot)
        await pilot.press(*["right"] * 7)
        assert app.grid.selected == ("mara", 8)
        await open_dialog(pilot, "p")
        await submit(pilot, "felt.anger", "0.65")
        await until(pilot, lambda: app.session.finished)
        await settle(pilot)
        assert abs(app.session.scene().cell("mara", 8).felt["anger"] - 0.65) < 1e-5


# ---------------------------------------------------------------- files

async def test_save_and_reopen_continue_exactly(engine, tmp_path):
    path, copy = tmp_path / "storm.draft.json", tmp_path / "saved.draft.json"
    first = make_app(engine, tmp_path)
    async with first.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        await pilot.press("right")
        await open_dialog(pilot, "p")
        await submit(pilot, "felt.joy", ">=0.6")
        await pilot.press("s")
        await pilot.pause()
        saved = first.session.snapshot()
        shutil.copy(path, copy)
        await run_to_end(pilot)
        finished = first.session.scene()
    second = StorydiffApp(engine, copy, pace=0.0)
    async with second.run_test(size=SIZE) as pilot:
        await pilot.pause()
        session = second.session
        assert second.state == "paused" and session.pins == list(saved.pins)
        assert (session.seed, session.steps, session.step.index) == (0, STEPS, 1)
        for field in ("x_t", "x0_hat", "projected", "rng_state"):
            assert torch.equal(getattr(session.step, field), getattr(saved.history[-1], field))
        await run_to_end(pilot)
        assert session.scene().model_dump(exclude={"provenance"}) == \
            finished.model_dump(exclude={"provenance"})


async def test_draft_is_saved_after_every_step_and_on_quit(engine, tmp_path):
    from storydiff.tui import draft

    path = tmp_path / "storm.draft.json"
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 1)
        assert draft.load(path).history[-1].index == 0
        await steps(pilot, 1)
        assert draft.load(path).history[-1].index == 1
        await pilot.press("q")
    assert draft.load(path).history[-1].index == 1


async def test_a_draft_from_before_the_projection_split_loads(engine, tmp_path):
    """Drafts once saved the projection's warm start as one `dual` and one `rho`: the whole problem."""
    import base64
    import json

    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors
    from storydiff.tui import draft

    path, old = tmp_path / "storm.draft.json", tmp_path / "old.draft.json"
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        await pilot.press("q")
    doc = json.loads(path.read_text())
    tensors = load_tensors(base64.b64decode(doc["tensors"]))
    renamed = {re.sub(r"\.(dual|rho)\.0$", r".\1", k): v for k, v in tensors.items()}
    assert renamed.keys() != tensors.keys()
    for step in doc["history"]:
        for meta in step["carry"].values():
            assert meta.pop("parts", 1) == 1
    doc["tensors"] = base64.b64encode(save_tensors(renamed)).decode("ascii")
    old.write_text(json.dumps(doc))
    new_state, old_state = (draft.load(p).history[-1].carry["projection"] for p in (path, old))
    assert torch.equal(old_state.duals[0], new_state.duals[0]) and len(old_state.rhos) == 1


async def test_opening_a_situation_again_reopens_its_draft_paused(engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = StorydiffApp(engine, steps=STEPS, pace=0.0, paused=True)
    async with first.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
    second = StorydiffApp(engine, steps=STEPS, pace=0.0)
    async with second.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert second.draft_path == tmp_path / "storm.draft.json"
        assert second.session.step.index == 1 and second.state == "paused"


async def test_someone_elses_draft_is_never_overwritten(engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "storm.draft.json").write_text("notes, not a draft")
    app = StorydiffApp(engine, steps=STEPS, pace=0.0, paused=True)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 1)
        assert app.draft_path == tmp_path / "storm-2.draft.json"
    assert (tmp_path / "storm.draft.json").read_text() == "notes, not a draft"
    assert (tmp_path / "storm-2.draft.json").is_file()


async def test_export_writes_fountain(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)
        await pilot.press("enter")
        await pilot.pause()
    text = (tmp_path / "storm.fountain").read_text(encoding="utf-8")
    assert "MARA" in text and "ILAN" in text


async def test_changed_files_reload_and_errors_keep_the_draft(engine, tmp_path, library_copy):
    situation = library_copy / "situations" / "storm.situation.xml"
    app = make_app(engine, tmp_path, target=situation, watch_seconds=60)
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot, 2)
        text = situation.read_text(encoding="utf-8")
        retitled = text.replace("<title>Storm at the bar</title>", "<title>Storm over the bar</title>")
        situation.write_text(retitled, encoding="utf-8")
        app.check_files()
        await pilot.pause()
        assert app.session.situation.title == "Storm over the bar" and app.session.step.index == 1
        situation.write_text(text.replace('<beats count="8"/>', '<beats count="eight"/>'), encoding="utf-8")
        app.check_files()
        await pilot.pause()
        assert isinstance(app.screen, ErrorDialog)
        assert f"{situation}:" in rendered(app.screen.query_one("#problems"))
        await pilot.press("enter")
        assert app.session.situation.title == "Storm over the bar" and app.session.step.index == 1


async def test_a_broken_file_opens_in_a_dialog_not_a_crash(engine, tmp_path, library_copy):
    situation = library_copy / "situations" / "storm.situation.xml"
    situation.write_text(situation.read_text(encoding="utf-8").replace("</cast>", ""), encoding="utf-8")
    app = make_app(engine, tmp_path, target=situation)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ErrorDialog) and app.session is None
        assert f"{situation}:" in rendered(app.screen.query_one("#problems"))


async def test_a_story_goes_scene_by_scene_carrying_mood_and_stance(engine, tmp_path):
    story = bundled_library() / "stories" / "saltmarsh.story.xml"
    app = make_app(engine, tmp_path, target=story, steps=3, draft_path=tmp_path / "saltmarsh.draft.json")
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot)
        first = app.session.scene()
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: app.session.finished)
        await settle(pilot)
        assert app.session.part == 1 and app.session.done == [first]
        assert app.session.previous and all(".stance." in k for k in app.session.previous)
        assert "scene 2 of 7" in rendered(app.query_one("#situation"))


async def test_next_scene_on_a_situation_says_why_not(engine, tmp_path):
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await run_to_end(pilot)
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: notices(app))
        assert "storm.situation.xml is a situation, not a story" in notices(app)[-1]
        assert app.session.part == 0 and app.session.done == []


async def test_a_story_scene_carries_the_story_into_its_exports(engine, tmp_path):
    from storydiff.export import from_json
    from storydiff.render import regenerate_command

    path = bundled_library() / "stories" / "saltmarsh.story.xml"
    app = make_app(engine, tmp_path, target=path, steps=3, draft_path=tmp_path / "saltmarsh.draft.json")
    async with app.run_test(size=SIZE) as pilot:
        await run_to_end(pilot)
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: app.session.finished)
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        next(b for b in dialog.query(RadioButton) if b.name == "json").value = True
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        exported = from_json((tmp_path / "saltmarsh.json").read_text(encoding="utf-8"))
        story = open_target(path).story
    two = story.model_copy(update={"scenes": story.scenes[:2], "situations": story.situations[:2]})
    by_cli = engine.sample_story(two, seed=0, steps=3, sampler="heun", guidance=1.0)
    assert exported == by_cli  # the same scenes, provenance included: the CLI regenerates them
    assert [(s.provenance.story, s.provenance.part, s.provenance.seed) for s in exported] == \
        [("saltmarsh", 0, 0), ("saltmarsh", 1, 0)]
    regenerate = regenerate_command(exported[1].provenance)
    assert regenerate.startswith("storydiff sample <saltmarsh.story.xml> --seed 0 ")
    assert regenerate.endswith("(scene 2)")


async def test_open_and_guidance_dialogs_check_what_is_typed(engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the bundled examples' drafts go to the working folder
    app = make_app(engine, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "o")
        await type_into(pilot, "field-path", str(tmp_path / "nowhere.situation.xml"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "no such file" in rendered(dialog.query_one("#message"))
        await type_into(pilot, "field-path", str(bundled_library() / "situations" / "the-wake.situation.xml"))
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, FormDialog) and app.session.situation.id == "the-wake"
        assert app.draft_path == tmp_path / "the-wake.draft.json"
        dialog = await open_dialog(pilot, "g")
        await type_into(pilot, "field-guidance", "strong")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and "not a number" in rendered(dialog.query_one("#message"))
        await type_into(pilot, "field-guidance", "2")
        await pilot.press("enter")
        await until(pilot, lambda: app.session.finished)
        await settle(pilot)
        assert app.session.guidance == 2.0 and app.session.scene().provenance.guidance == 2.0


def test_the_tui_command_is_listed(capsys):
    from storydiff.cli import main

    assert main(["tui", "--help"]) == 0
    out = capsys.readouterr().out
    assert "SITUATION_OR_STORY_OR_DRAFT" in out and "--draft" in out


def test_importing_storydiff_does_not_import_textual():
    code = "import sys, storydiff, storydiff.cli; storydiff.Engine; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- how it looks (SVG snapshots)

@pytest.fixture
def snapshot_app(engine, tmp_path, monkeypatch) -> StorydiffApp:
    """Paused, fixed seed, a draft name that does not depend on the temporary folder, and file names
    in messages relative to the folder holding the example library, wherever it is installed."""
    monkeypatch.chdir(bundled_library().parent)
    return make_app(engine, tmp_path, seed=0)


def test_snapshot_grid_and_inspector(snapshot_app, snap_compare):
    async def run_before(pilot) -> None:
        await steps(pilot, 3)
        await pilot.press("down", "right", "right")

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_infeasible_pin_refused(snapshot_app, snap_compare):
    async def run_before(pilot) -> None:
        await steps(pilot, 1)
        await open_dialog(pilot, "p")
        await submit(pilot, "felt.shame", ">=0.6")
        for field in pilot.app.screen.query("Input"):
            field.cursor_blink = False

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_beat_sheet(snapshot_app, snap_compare):
    async def run_before(pilot) -> None:
        await run_to_end(pilot)
        await pilot.press("t")

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=run_before)


# ---------------------------------------------------------------- in a real terminal

class Terminal:
    """A tmux session running one command, read back as text."""

    def __init__(self, name: str, command: str, size: tuple[int, int] = SIZE):
        self.name = name
        width, height = size
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                        command], check=True)

    def text(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-t", self.name, "-p"], capture_output=True, text=True,
                              check=True).stdout

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, *needles: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(n in text for n in needles):
                return text
            assert time.monotonic() < deadline, f"never showed {needles}; the screen was:\n{text}"
            time.sleep(0.1)

    def submit_field(self, text: str, dialog: str, attempts: int = 3) -> None:
        """Clear the focused input, type `text` and press Enter until the dialog titled `dialog` closes.

        On a loaded machine keys can arrive before the input has the focus, or the screen can lag the
        keys by seconds; each attempt starts from a cleared field, so a late one does no harm."""
        for _ in range(attempts):
            self.send(*["BSpace"] * 12)
            self.send("-l", text)
            try:
                self.wait_for(text, timeout=5)
            except AssertionError:
                continue
            self.send("Enter")
            deadline = time.monotonic() + 5
            while dialog in self.text() and time.monotonic() < deadline:
                time.sleep(0.1)
            if dialog not in self.text():
                return
        raise AssertionError(f"{dialog} never took {text!r}; the screen was:\n{self.text()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False, capture_output=True)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_writer_drafts_a_scene_in_a_real_terminal(tmp_path):
    """Open the example, watch it denoise, pause at step k, inspect, pin, resume, export Fountain, quit."""
    from storydiff.tui import draft

    # COLUMNS and LINES as well as tmux's size: the app may start before tmux has resized the window.
    command = (f"cd {tmp_path} && COLUMNS={SIZE[0]} LINES={SIZE[1]} OMP_NUM_THREADS=1 "
               f"{sys.executable} -m storydiff.cli tui --pace 1 --steps 8 --device cpu; "
               "echo storydiff exited with $?; sleep 60")
    term = Terminal(f"storydiff-tui-{os.getpid()}", command)
    try:
        # Pause once the first step is on screen: paused before any step, the draft is just "ready".
        term.wait_for("running", "Storm at the bar", "space Run/Pause", "step 1/8")
        term.send("Space")
        k = int(re.search(r"step (\d)/8", term.wait_for("paused")).group(1))
        time.sleep(1.5)  # more than a paced step's time: the counter must not move
        assert f"step {k}/8" in term.text() and k < 8
        while k < 2:
            term.send("n")
            k += 1
            term.wait_for(f"step {k}/8", "paused")
        term.send("Right")
        screen = term.wait_for("Mara Voss · beat 2")
        assert "felt" in screen and "shown" in screen and "mood" in screen and "toward Ilan Voss" in screen
        term.send("p")
        term.wait_for("Pin · mara at beat 2")
        term.submit_field(">=0.1", "Pin · mara at beat 2")
        screen = term.wait_for("*mara.shown.")
        term.send("Space")
        term.wait_for("step 8/8", "done")
        term.send("x")
        term.wait_for("Export", "storm.fountain")
        term.send("Enter")
        term.wait_for("Wrote")
        term.send("q")
        term.wait_for("storydiff exited with 0", timeout=30)
    finally:
        term.close()
    fountain = (tmp_path / "storm.fountain").read_text(encoding="utf-8")
    assert "MARA" in fountain
    saved = draft.load(tmp_path / "storm.draft.json")
    assert [p.var.split(".")[:2] for p in saved.pins] == [["mara", "shown"]]
    assert saved.history[-1].index == 7


def test_tui_on_a_missing_file_is_a_one_line_usage_error(tmp_path, capsys):
    from storydiff.cli import main

    assert main(["tui", str(tmp_path / "nowhere.situation.xml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere.situation.xml: no such file" in err
