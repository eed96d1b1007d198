"""The beat grid: one row per character, one column per beat, the dominant shown emotion in each cell.

A cell reads ` ▲.62≠`: the emotion's glyph (and colour), its shown intensity, and
`≠` where felt and shown differ (subtext). Pinned cells are underlined and bold,
cells the writer edited are in italics.
The arrow keys move the selection; the app shows the selected cell in the inspector.
"""
from __future__ import annotations

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from storydiff.render import SHOWN_FLOOR
from storydiff.scene import CharacterBeat, Scene

from .palette import COLOURS, FAINT_GLYPH, GAP_MARK, GLYPHS, intensity

CELL_WIDTH = 6


def cell_text(cell: CharacterBeat, pinned: bool = False, edited: bool = False) -> Text:
    """` ▲.62≠` for one character at one beat (the leading space separates the columns)."""
    emotion, value = cell.dominant("shown")
    mark = GAP_MARK if cell.subtext else " "
    style = ("bold underline " if pinned else "") + ("italic" if edited else "")
    if value < SHOWN_FLOOR:
        return Text.assemble(" ", (FAINT_GLYPH, "dim"), (intensity(value), f"dim {style}"), mark)
    colour = COLOURS[emotion]
    return Text.assemble(" ", (GLYPHS[emotion], f"bold {colour}"), (intensity(value), f"{colour} {style}"),
                         mark)


def legend(scene: Scene) -> Text:
    """The glyphs on screen, named, and the marks."""
    seen = []
    for row in scene.cells:
        for cell in row:
            emotion, value = cell.dominant("shown")
            if value >= SHOWN_FLOOR and emotion not in seen:
                seen.append(emotion)
    parts: list[tuple[str, str] | str] = []
    for emotion in seen:
        parts += [(GLYPHS[emotion], COLOURS[emotion]), f" {emotion}  "]
    parts += [f"{FAINT_GLYPH} nothing shown  {GAP_MARK} felt ≠ shown  ", ("underlined", "underline"),
              " pinned  ", ("italic", "italic"), " edited"]
    return Text.assemble(*parts)


class BeatGrid(DataTable):
    """Characters × beats; `selected` is the (character id, beat from 1) under the cursor."""

    def __init__(self, **kwargs):
        super().__init__(cursor_type="cell", zebra_stripes=False, cell_padding=0, **kwargs)
        self.cast: list[str] = []

    def set_shape(self, cast: list[tuple[str, str]], beats: int, event_beats: set[int]) -> None:
        """Rows for (id, display name) and one column per beat; `!` marks a beat with an event."""
        if [cid for cid, _ in cast] == self.cast and len(self.columns) == beats:
            return
        self.clear(columns=True)
        self.cast = [cid for cid, _ in cast]
        for beat in range(1, beats + 1):
            label = f" {beat}!" if beat in event_beats else f" {beat}"
            self.add_column(label, width=CELL_WIDTH, key=str(beat))
        for cid, name in cast:
            self.add_row(*[Text(" " * CELL_WIDTH)] * beats, key=cid, label=name)

    def show(self, scene: Scene | None, pinned: set[tuple[str, int]], edited: set[tuple[str, int]]) -> None:
        """Fill every cell from a scene (placeholders while there is none yet); marks (character, beat)s."""
        for cid in self.cast:
            for beat in range(1, len(self.columns) + 1):
                if scene is None:
                    text = Text(" …", "dim")
                else:
                    text = cell_text(scene.cell(cid, beat), (cid, beat) in pinned, (cid, beat) in edited)
                self.update_cell(cid, str(beat), text)

    @property
    def selected(self) -> tuple[str, int] | None:
        if not self.cast or not self.columns:
            return None
        row, column = self.cursor_coordinate
        return self.cast[row], column + 1

    def select(self, character: str, beat: int) -> None:
        self.cursor_coordinate = Coordinate(self.cast.index(character), beat - 1)
