"""The writer's terminal app (DESIGN §9): watch a scene denoise, pause, inspect, pin, edit, resume, export.

The app owns a `Session` (the draft, no widgets) and redraws from it; denoising
runs in a thread worker (`worker.drive`) that posts each step back. Every step is
saved to the draft file atomically, so a crash or a kill loses at most the step
being computed.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from storydiff.engine import Engine
from storydiff.errors import StorydiffError, ValidationError
from storydiff.export import export, write_atomic

from . import draft as drafts
from .dialogs import ErrorDialog, ExportDialog, Field, FormDialog
from .grid import BeatGrid, legend
from .inspector import Inspector
from .panels import BeatSheet, SituationPanel, StepStrip, render_situation, render_strip
from .session import Session
from .sources import FileWatch, Opened, demo_situation, is_draft, open_target
from .values import describe_pin, expand_variable, parse_pin, parse_value
from .worker import RunStopped, StepReady, drive

# Least time between two steps while running, so a writer can watch the scene settle.
DEFAULT_PACE = 0.2
WATCH_SECONDS = 1.0


def describe_error(error: BaseException) -> str:
    """Text for the error dialog: one problem per line, `file:line:col: error: message`."""
    if isinstance(error, ValidationError):
        return "\n".join(str(p) for p in error.problems)
    return str(error)


def cells_of(variables: Iterable[str]) -> set[tuple[str, int]]:
    """The (character, beat) cells that variables such as `mara.felt.joy@2` belong to."""
    return {(name.split(".", 1)[0], int(name.rsplit("@", 1)[1])) for name in variables}


class StorydiffApp(App[None]):
    """`storydiff tui [SITUATION_OR_STORY_OR_DRAFT]`."""

    CSS_PATH = "storydiff.tcss"
    TITLE = "storydiff"
    # The footer shows these in order and cuts what does not fit: the keys of every session first.
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("space", "toggle_run", "Run/Pause"),
        Binding("n", "step", "Step"),
        Binding("p", "pin", "Pin"),
        Binding("e", "edit", "Edit"),
        Binding("u", "undo", "Undo"),
        Binding("r", "resample", "Resample"),
        Binding("x", "export", "Export"),
        Binding("s", "save", "Save"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+r", "redo", "Redo"),
        Binding("delete,backspace", "unpin", "Unpin", show=False),
        Binding("plus,equals_sign", "more_steps", "+Steps", key_display="+"),
        Binding("minus", "fewer_steps", "-Steps", key_display="-"),
        Binding("g", "guidance", "Guidance"),
        Binding("t", "toggle_sheet", "Beat sheet"),
        Binding("o", "open", "Open"),
        Binding("right_square_bracket", "next_scene", "Next scene", key_display="]"),
    ]
    # Below 120 columns the cast panel folds away and the inspector narrows, so the grid keeps room.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]

    def __init__(self, engine: Engine, target: str | Path | None = None, *, characters: str | None = None,
                 draft_path: str | Path | None = None, seed: int = 0, steps: int = 12, sampler: str = "heun",
                 guidance: float = 1.0, paused: bool = False, pace: float = DEFAULT_PACE,
                 watch_seconds: float = WATCH_SECONDS):
        super().__init__()
        self.engine = engine
        self.target = Path(target) if target else demo_situation()
        self.characters = characters
        self.draft_path = Path(draft_path) if draft_path else None
        self.settings = {"seed": seed, "steps": steps, "sampler": sampler, "guidance": guidance}
        self.start_paused, self.pace, self.watch_seconds = paused, pace, watch_seconds
        self.session: Session | None = None
        self.watch: FileWatch | None = None
        self.running = False
        self.generation = 0
        self.autosave_failed = False
        self.reopened = False

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="scene", id="tabs"):
            with TabPane("Scene", id="scene"), Horizontal(id="scene-row"):
                with VerticalScroll(id="left"):
                    yield SituationPanel(id="situation")
                with Vertical(id="centre"):
                    yield BeatGrid(id="grid")
                    yield Static("", id="legend")
                with VerticalScroll(id="right"):
                    yield Inspector(id="inspector")
            with TabPane("Beat sheet", id="sheet"), VerticalScroll(id="sheet-scroll"):
                yield BeatSheet(id="beat-sheet")
        yield StepStrip(id="strip")
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p still opens it

    @property
    def grid(self) -> BeatGrid:
        return self.query_one(BeatGrid)

    @property
    def inspector(self) -> Inspector:
        return self.query_one(Inspector)

    def on_mount(self) -> None:
        self.grid.focus()
        problem = self.open_path(self.target, self.draft_path)
        if problem:
            self.report("Could not open", problem)
        self.set_interval(self.watch_seconds, self.check_files)
        if self.session and not self.start_paused and not self.reopened:
            self.start()

    # ------------------------------------------------------------ opening

    def open_path(self, target: Path, draft_path: Path | None = None) -> str | None:
        """Open a situation, story or draft; returns what went wrong (the current draft stays open).

        A situation whose draft file exists reopens that draft (paused), so opening the same
        scene twice never overwrites earlier work; a draft there of another scene is left alone.
        """
        try:
            if is_draft(target):
                session, draft_path = self._session_from_draft(target), target
            else:
                opened = open_target(target, self.characters)
                session, draft_path = self._session_for(opened, draft_path)
        except (ValidationError, StorydiffError, OSError, drafts.DraftError) as e:
            self.watch = self.watch or FileWatch([target])
            return describe_error(e)
        self.stop()
        self.session, self.draft_path = session, draft_path
        self.watch = FileWatch(session.opened.watched())
        self.title = f"storydiff · {session.situation.title or session.situation.id}"
        self.refresh_view(reshape=True)
        return None

    def _session_for(self, opened: Opened, draft_path: Path | None) -> tuple[Session, Path]:
        """The situation's own draft when there is one, else a new session and a draft file name."""
        explicit = draft_path is not None
        path = draft_path or drafts.default_path(opened.path, opened.name)
        while path.exists():
            try:
                saved = drafts.load(path)
            except drafts.DraftError:
                if explicit:
                    raise
                saved = None
            if saved and saved.source.resolve() == opened.path.resolve():
                self.reopened = True
                self.notify(f"Reopened {path.name}; r samples afresh.", title="Draft found")
                return drafts.restore(self.engine, saved, opened), path
            if explicit:
                raise drafts.DraftError(f"{path} is a draft of {saved.source}; choose another --draft file")
            path = drafts.next_path(path)
        return Session(self.engine, opened, **self.settings), path

    def _session_from_draft(self, path: Path) -> Session:
        saved = drafts.load(path)
        opened = open_target(saved.source, saved.characters)
        self.reopened = True
        return drafts.restore(self.engine, saved, opened)

    def check_files(self) -> None:
        """Reload when a watched file changed on disk; problems go to a dialog and the draft stays."""
        if not self.watch or not self.watch.changed():
            return
        if self.session is None:
            problem = self.open_path(self.target, self.draft_path)
            if problem:
                self.report("Still cannot open", problem)
            return
        was_running, was_finished = self.running, self.session.finished
        try:
            opened = open_target(self.session.opened.path, self.session.opened.explicit_characters)
            self.stop()
            self.session.reload(opened)
        except (ValidationError, StorydiffError, OSError) as e:
            self.report("Not reloaded: the draft is unchanged", describe_error(e))
            if was_running and not self.running:
                self.start()
            return
        self.watch = FileWatch(self.session.opened.watched())
        self.notify("Reloaded the changed files.", title="Files changed")
        self.autosave()
        self.refresh_view(reshape=True)
        if was_running or was_finished:
            self.start()

    def report(self, title: str, text: str) -> None:
        self.push_screen(ErrorDialog(title, text))

    # ------------------------------------------------------------ denoising

    def start(self, single: bool = False) -> None:
        """Denoise from the current step in a thread worker (one step when `single`)."""
        steps = self.session.iterator() if self.session else None
        if steps is None:
            return
        self.generation += 1
        self.running = not single
        self.run_worker(partial(drive, steps, self.post_message, self.generation, single=single,
                                pace=0.0 if single else self.pace),
                        name="denoise", group="denoise", thread=True, exclusive=True)
        self.refresh_strip()

    def stop(self) -> None:
        """Pause now: the worker is cancelled and any step it still sends is ignored."""
        self.generation += 1
        self.running = False
        self.workers.cancel_group(self, "denoise")
        if self.session:
            self.refresh_strip()

    def on_step_ready(self, message: StepReady) -> None:
        if message.generation != self.generation or self.session is None:
            return
        self.session.accept(message.step)
        if message.step.last:
            self.running = False
        self.autosave()
        self.refresh_view()

    def on_run_stopped(self, message: RunStopped) -> None:
        if message.generation != self.generation:
            return
        self.running = False
        self.refresh_strip()
        if message.error is not None:
            self.report("Denoising stopped", f"{type(message.error).__name__}: {message.error}")

    # ------------------------------------------------------------ drawing

    @property
    def state(self) -> str:
        if self.session is None:
            return "nothing open"
        if self.running:
            return "running"
        if self.session.finished:
            return "done"
        return "paused" if self.session.step else "ready"

    def refresh_view(self, reshape: bool = False) -> None:
        session = self.session
        if session is None:
            return
        situation = session.situation
        if reshape:
            cast = [(cid, session.opened.cast[cid].name.split()[0]) for cid in situation.cast]
            self.grid.set_shape(cast, situation.beats, {e.beat for e in situation.events})
        scene = session.scene()
        self.grid.show(scene, cells_of(p.var for p in session.pins), cells_of(e.var for e in session.edits))
        self.query_one("#legend", Static).update(legend(scene) if scene else "")
        part = f"scene {session.part + 1} of {len(session.opened.situations)}" if session.opened.story else ""
        panel = render_situation(situation, session.opened.cast, session.pins, part)
        self.query_one(SituationPanel).update(panel)
        self.query_one(BeatSheet).show(session.scenes())
        self.refresh_inspector()
        self.refresh_strip()

    def refresh_strip(self) -> None:
        session = self.session
        if session is None:
            return
        name = self.draft_path.name if self.draft_path else ""
        self.query_one(StepStrip).update(render_strip(session.trace, session.steps, self.state, session.seed,
                                                      session.sampler, session.guidance, name))

    def refresh_inspector(self) -> None:
        session, selected = self.session, self.grid.selected
        scene = session.scene() if session else None
        if scene is None or selected is None:
            self.inspector.show(None)
            return
        cid, beat = selected
        events = [e.text or e.id for e in scene.events if e.beat == beat]
        pins = [describe_pin(p) for p in session.pins_on(cid, beat)]
        edits = [f"{e.var} = {e.value:g}" for e in session.edits_on(cid, beat)]
        self.inspector.show(scene.cell(cid, beat), scene.names[cid], scene.names, events, pins, edits)

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        self.refresh_inspector()

    # ------------------------------------------------------------ saving

    def autosave(self) -> None:
        """Write the draft atomically; a failure is reported once, and sampling carries on."""
        if self.session is None or self.draft_path is None:
            return
        try:
            drafts.save(self.session, self.draft_path)
            self.autosave_failed = False
        except OSError as e:
            if not self.autosave_failed:
                self.notify(f"Draft not saved: {e}", title="Autosave", severity="error")
            self.autosave_failed = True

    def action_save(self) -> None:
        if self.session is None:
            return
        try:
            path = drafts.save(self.session, self.draft_path)
        except OSError as e:
            self.report("Not saved", str(e))
            return
        self.notify(f"Saved {path}", title="Draft")

    def action_export(self) -> None:
        if self.session is None or not self.session.step:
            self.notify("Nothing to export yet: press space to denoise.")
            return
        self.stop()
        stem = self.draft_path.with_name(self.session.opened.name)
        self.push_screen(ExportDialog(stem, self.write_export))

    def write_export(self, fmt: str, path: Path) -> str | None:
        scenes = self.session.scenes()
        try:
            write_atomic(path, export(scenes[0] if len(scenes) == 1 else scenes, fmt))
        except (OSError, ValueError, StorydiffError) as e:
            return str(e)
        self.notify(f"Wrote {path}", title="Exported")
        return None

    async def action_quit(self) -> None:
        self.stop()
        self.autosave()
        self.exit()

    # ------------------------------------------------------------ running

    def action_toggle_run(self) -> None:
        if self.running:
            self.stop()
        elif self.session and self.session.finished:
            self.notify("The scene is done: p pins a value to revise it, r samples afresh.")
        else:
            self.start()

    def action_step(self) -> None:
        self.stop()
        self.start(single=True)

    def restart(self, **change) -> str | None:
        """Start again from noise with a change of seed, steps or guidance."""
        self.stop()
        try:
            self.session.restart(**change)
        except StorydiffError as e:
            return str(e)
        self.autosave()
        self.refresh_view()
        self.start()
        return None

    def action_resample(self) -> None:
        if self.session:
            self.restart(seed=self.session.seed + 1)

    def action_more_steps(self) -> None:
        if self.session:
            self.restart(steps=self.session.steps + 1)

    def action_fewer_steps(self) -> None:
        if self.session and self.session.steps > 1:
            self.restart(steps=self.session.steps - 1)

    def action_guidance(self) -> None:
        if self.session is None:
            return

        def check(values: dict[str, str]) -> str | None:
            try:
                guidance = float(values["guidance"])
            except ValueError:
                return (f"'{values['guidance']}' is not a number; "
                        "1 means no guidance, 2 follows the situation more closely")
            if not 0 <= guidance <= 10:
                return "guidance runs from 0 to 10 (1 = none)"
            return self.restart(guidance=guidance)

        self.push_screen(FormDialog("Guidance", [Field("guidance", "Strength", f"{self.session.guidance:g}")],
                                    check, hint="1 = none; higher follows the situation more closely"))

    # ------------------------------------------------------------ pins and edits

    def _change_dialog(self, title: str, value_label: str, hint: str, apply) -> None:
        """A dialog for a variable of the selected cell and a value; `apply(name, text)` may refuse."""
        if self.session is None or self.session.step is None or self.grid.selected is None:
            self.notify("Denoise a step first (n), then pick a cell.")
            return
        self.stop()
        was_finished = self.session.finished
        cid, beat = self.grid.selected
        cell = self.session.scene().cell(cid, beat)
        emotion, value = cell.dominant("shown")
        layout = self.session.run.layout

        def check(values: dict[str, str]) -> str | None:
            try:
                name = expand_variable(values["var"], cid, beat, layout)
                apply(name, values["value"])
            except ValueError as e:
                return str(e)
            except StorydiffError as e:
                return f"Refused: {e}"
            return None

        def done(changed: bool | None) -> None:
            if not changed:
                return
            self.autosave()
            self.refresh_view()
            if was_finished:
                self.start()

        example = "felt.anger, mood.pleasure, stance.other.trust"
        fields = [Field("var", "Variable", f"shown.{emotion}", example),
                  Field("value", value_label, f"{value:.2f}")]
        self.push_screen(FormDialog(f"{title} · {cell.character} at beat {beat}", fields, check, hint), done)

    def action_pin(self) -> None:
        self._change_dialog("Pin", "Value", "0.4 exactly, >=0.5, <=0.2 or 0.3..0.6; the scene must honour it",
                            lambda name, text: self.session.pin(parse_pin(text, name)))

    def action_edit(self) -> None:
        self._change_dialog("Edit", "New value", "set once from this step on; not a constraint",
                            lambda name, text: self.session.edit(name, parse_value(text, name)))

    def action_unpin(self) -> None:
        """Remove the writer's pins on the selected cell (the file's own pins stay)."""
        if self.session is None or self.grid.selected is None:
            return
        cid, beat = self.grid.selected
        mine = [p.var for p in self.session.pins_on(cid, beat)]
        if not mine:
            self.notify("No pin of yours on this cell.")
            return
        self.stop()
        self.session.unpin(*mine)
        self.notify(f"Unpinned {', '.join(mine)}; u brings {'them' if len(mine) > 1 else 'it'} back.")
        self.autosave()
        self.refresh_view()

    def action_undo(self) -> None:
        self._history(self.session.undo if self.session else None, "Nothing to undo.", "Undone.")

    def action_redo(self) -> None:
        self._history(self.session.redo if self.session else None, "Nothing to redo.", "Redone.")

    def _history(self, move, empty: str, done: str) -> None:
        if move is None:
            return
        self.stop()
        try:
            moved = move()
        except StorydiffError as e:
            self.report("Cannot restore", str(e))
            return
        self.notify(done if moved else empty)
        self.autosave()
        self.refresh_view()

    # ------------------------------------------------------------ elsewhere

    def action_toggle_sheet(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "sheet" if tabs.active == "scene" else "scene"
        (self.grid if tabs.active == "scene" else self.query_one("#sheet-scroll")).focus()

    def action_open(self) -> None:
        def check(values: dict[str, str]) -> str | None:
            path = Path(values["path"]).expanduser()
            problem = self.open_path(path, path if is_draft(path) else None)
            if problem is None:
                self.target = path
            return problem

        self.push_screen(FormDialog("Open", [Field("path", "Situation, story or draft", "",
                                                   "characters/situations/storm.situation.xml")], check))

    def action_next_scene(self) -> None:
        if self.session is None:
            return
        if not self.session.opened.story:
            self.notify(f"{self.session.opened.path.name} is a situation, not a story: "
                        "] goes on to a story's next scene (.story.xml).")
            return
        self.stop()
        try:
            self.session.next_part()
        except (ValueError, StorydiffError) as e:
            self.notify(str(e))
            return
        self.autosave()
        self.refresh_view(reshape=True)
        self.start()
