"""Modal dialogs: a form that checks what was typed before it closes, an error report, and export.

A form's `check` does the work (pin, edit, open…) and returns a message when it
cannot: the message appears under the inputs and the dialog stays open, so a
typo or an infeasible pin costs nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

EXTENSIONS = {"text": ".txt", "json": ".json", "emotionml": ".emotionml", "fountain": ".fountain",
              "ink": ".ink"}


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    value: str = ""
    placeholder: str = ""


class CheckedDialog(ModalScreen[bool]):
    """Closes with True once `attempt()` succeeds; otherwise shows its message under the inputs."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "cancel", "Cancel")]

    def attempt(self) -> str | None:
        """Do the dialog's work; a message saying what went wrong, or None."""
        raise NotImplementedError

    def submit(self) -> None:
        problem = self.attempt()
        if problem:
            message = self.query_one("#message", Static)
            message.update(Text(problem))
            message.add_class("error")
        else:
            self.dismiss(True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


class FormDialog(CheckedDialog):
    """Inputs and an inline message; closes with True only once `check(values)` returns None."""

    def __init__(self, title: str, fields: list[Field], check: Callable[[dict[str, str]], str | None],
                 hint: str = "", action: str = "OK"):
        super().__init__()
        self.title_text, self.fields, self.check, self.hint, self.action = title, fields, check, hint, action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            for field in self.fields:
                yield Label(field.label, classes="field-label")
                yield Input(field.value, placeholder=field.placeholder, id=f"field-{field.key}")
            if self.hint:
                yield Static(self.hint, classes="hint")
            yield Static("", id="message", classes="message")
            with Horizontal(classes="buttons"):
                yield Button(self.action, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(f"#field-{self.fields[-1].key}", Input).focus()

    def values(self) -> dict[str, str]:
        return {f.key: self.query_one(f"#field-{f.key}", Input).value for f in self.fields}

    def attempt(self) -> str | None:
        return self.check(self.values())


class ErrorDialog(ModalScreen[None]):
    """Problems in files, one `file:line:col: error: message` per line; the app carries on behind it."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "close", "Close"),
                                         Binding("enter", "close", "Close")]

    def __init__(self, title: str, text: str):
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(Text(self.text), id="problems", classes="problems")
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="primary", id="ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ExportDialog(CheckedDialog):
    """Pick a format and a file; `write(fmt, path)` writes it or returns what went wrong."""

    def __init__(self, stem: Path, write: Callable[[str, Path], str | None], fmt: str = "fountain"):
        super().__init__()
        self.stem, self.write, self.fmt = stem, write, fmt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Export", classes="dialog-title")
            with RadioSet(id="formats"):
                for fmt in EXTENSIONS:
                    yield RadioButton(fmt, value=fmt == self.fmt, name=fmt)
            yield Label("File", classes="field-label")
            yield Input(str(self.stem.with_name(self.stem.name + EXTENSIONS[self.fmt])), id="path")
            yield Static(self._hint(), id="export-hint", classes="hint")
            yield Static("", id="message", classes="message")
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def _hint(self) -> str:
        return f"enter writes {self.fmt} to this file (atomically)"

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.fmt = event.pressed.name or self.fmt
        path = self.query_one("#path", Input)
        current = Path(path.value)
        stem = current.name
        for ext in EXTENSIONS.values():
            stem = stem.removesuffix(ext)
        path.value = str(current.with_name(stem + EXTENSIONS[self.fmt]))
        self.query_one("#export-hint", Static).update(self._hint())

    def attempt(self) -> str | None:
        return self.write(self.fmt, Path(self.query_one("#path", Input).value))
