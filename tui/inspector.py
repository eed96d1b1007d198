"""The inspector: everything the engine holds about the selected character at the selected beat.

Felt against shown for the strongest emotions (the gap is the subtext), mood as a
PAD point, stance toward each other character, the constraint rows holding the
cell where it is (by name, as the projection reports them), the writer's pins and
edits on it, and the behaviour chosen from the character's repertoire.
"""
from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from storydiff.render import subtext_summary, temperament
from storydiff.scene import CharacterBeat
from storydiff.vocab import PAD, STANCE

from .palette import COLOURS, GLYPHS

BAR = 12
TOP = 5
BINDING_SHOWN = 8
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_STANCE_WORDS = {"liking": "likes", "dominance": "dominates", "trust": "trusts"}


def bar(value: float, width: int = BAR) -> str:
    """A bar of `width` cells for a value in [0, 1], in eighths."""
    value = min(max(value, 0.0), 1.0)
    full, part = divmod(round(value * width * 8), 8)
    return ("█" * full + (_EIGHTHS[part] if part else "")).ljust(width)


def signed_bar(value: float, half: int = 6) -> str:
    """`───●──┼─────`: where a value in [-1, 1] sits, the centre marked."""
    value = min(max(value, -1.0), 1.0)
    at = round((value + 1) / 2 * (2 * half))
    cells = ["─"] * (2 * half + 1)
    cells[half] = "┼"
    cells[at] = "●"
    return "".join(cells)


def top_emotions(cell: CharacterBeat, n: int = TOP) -> list[str]:
    """The emotions most felt or most shown, strongest first."""
    return sorted(cell.felt, key=lambda e: -max(cell.felt[e], cell.shown[e]))[:n]


def render_cell(cell: CharacterBeat, name: str, names: dict[str, str], events: list[str],
                pins: list[str], edits: list[str]) -> Group:
    """The inspector's content for one cell."""
    out: list[Text] = [Text.assemble((name, "bold"), f" · beat {cell.beat}")]
    for event in events:
        out.append(Text(f"! {event}", "italic"))
    out.append(Text.assemble(("does ", "dim"), cell.behaviour_text or "(nothing from the repertoire)"))
    subtext = subtext_summary(cell)
    if subtext:
        out.append(Text.assemble(("≠ ", "bold"), (subtext, "italic")))
    out.append(Text.assemble(("felt ", "dim"), "/", (" shown", "dim")))
    for emotion in top_emotions(cell):
        colour = COLOURS[emotion]
        out.append(Text.assemble((GLYPHS[emotion], colour), f" {emotion}"))
        felt, shown = cell.felt[emotion], cell.shown[emotion]
        out.append(Text.assemble("  felt  ", (bar(felt), "grey70"), f" {felt:.2f}"))
        out.append(Text.assemble("  shown ", (bar(shown), colour), f" {shown:.2f}"))
    out.append(Text.assemble(("mood ", "dim"), temperament(cell.mood)))
    for dim in PAD:
        value = cell.mood[dim]
        out.append(Text(f"  {dim:<9} {signed_bar(value)} {value:+.2f}"))
    for other, stance in cell.stance.items():
        out.append(Text.assemble(("toward ", "dim"), names.get(other, other)))
        out += [Text(f"  {_STANCE_WORDS[s]:<9} {signed_bar(stance[s])} {stance[s]:+.2f}") for s in STANCE]
    if pins:
        out.append(Text("pinned", "dim"))
        out += [Text(f"  * {p}") for p in pins]
    if edits:
        out.append(Text("edited", "dim"))
        out += [Text(f"  * {e}", "italic") for e in edits]
    rules = [row for row in cell.binding if not row.startswith("box:")]
    edges = len(cell.binding) - len(rules)
    out.append(Text("held by", "dim"))
    out += [Text(f"  {row}", "grey70") for row in rules[:BINDING_SHOWN]]
    if len(rules) > BINDING_SHOWN:
        out.append(Text(f"  … {len(rules) - BINDING_SHOWN} more", "dim"))
    if edges:
        words = "values at the edge of their range" if edges > 1 else "value at the edge of its range"
        out.append(Text(f"  {edges} {words}", "dim"))
    if not cell.binding:
        out.append(Text("  nothing: free here"))
    return Group(*out)


class Inspector(Static):
    """Shows one cell; `cell` is exactly what the engine's scene holds there."""

    def __init__(self, **kwargs):
        super().__init__("Select a cell in the grid.", **kwargs)
        self.cell: CharacterBeat | None = None

    def show(self, cell: CharacterBeat | None, name: str = "", names: dict[str, str] | None = None,
             events: list[str] | None = None, pins: list[str] | None = None,
             edits: list[str] | None = None) -> None:
        self.cell = cell
        if cell is None:
            self.update("No scene yet: press space to start denoising.")
            return
        self.update(render_cell(cell, name, names or {}, events or [], pins or [], edits or []))
