"""The panels around the grid: cast and situation on the left, the step strip below, the beat sheet tab."""
from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from storydiff.models import Cast, Pin, Situation
from storydiff.render import render_beat_sheet
from storydiff.scene import Scene

from .session import Trace
from .values import describe_pin

_TICKS = "▁▂▃▄▅▆▇█"
# Big Five poles as a writer would say them (high, low), for traits far from the middle.
_TRAITS = {
    "openness": ("curious", "conventional"), "conscientiousness": ("disciplined", "careless"),
    "extraversion": ("outgoing", "reserved"), "agreeableness": ("warm", "hard"),
    "neuroticism": ("anxious", "steady"),
}
_TRAIT_MARGIN = 0.2


def sparkline(values: Sequence[float]) -> str:
    """One tick per value, scaled to the largest (the projection distance per step)."""
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(_TICKS[min(len(_TICKS) - 1, int(v / top * (len(_TICKS) - 1) + 0.5))] for v in values)


def traits(cast: Cast, cid: str) -> str:
    """`reserved, disciplined, anxious`: the traits that stand out."""
    p = cast[cid].personality
    words = [high if getattr(p, t) >= 0.5 else low for t, (high, low) in _TRAITS.items()
             if abs(getattr(p, t) - 0.5) >= _TRAIT_MARGIN]
    return ", ".join(words) or "even-tempered"


def render_situation(situation: Situation, cast: Cast, pins: list[Pin], part: str = "") -> Text:
    """Cast at a glance, the pins (the file's, then the writer's, starred), setting and events by beat."""
    out = Text()
    if part:
        out.append(f"{part}\n", "dim")
    out.append(f"{situation.title or situation.id}\n", "bold")
    out.append("\nCAST\n", "bold dim")
    for cid in situation.cast:
        character = cast[cid]
        culture = cast.culture_of(cid)
        out.append(f"{character.name}", "bold")
        out.append(f"  {culture.name if culture else 'no culture'}\n", "dim")
        out.append(f"  {traits(cast, cid)}\n")
    out.append("\nPINS\n", "bold dim")
    for pin in situation.pins:
        out.append(f"{describe_pin(pin)}\n")
    for pin in pins:
        out.append(f"*{describe_pin(pin)}\n", "bold")
    if not situation.pins and not pins:
        out.append("none\n", "dim")
    out.append("\nSETTING\n", "bold dim")
    out.append(f"{situation.setting or '—'}\n")
    out.append("\nEVENTS\n", "bold dim")
    for event in sorted(situation.events, key=lambda e: e.beat):
        out.append(f"{event.beat:>2} ", "bold")
        out.append(f"{event.text or event.id}\n")
    return out


def render_strip(trace: Sequence[Trace], steps: int, state: str, seed: int, sampler: str,
                 guidance: float, draft: str) -> Text:
    """`step 3/12 · σ 0.480 · distance ▇▄▃▂ 0.79 · seed 0 · heun · guidance 1 · paused`."""
    done = trace[-1].index + 1 if trace else 0
    sigma = f"{trace[-1].sigma:.3f}" if trace else "—"
    distance = f"{trace[-1].distance:.2f}" if trace else "—"
    line = Text.assemble(
        ("step ", "dim"), (f"{done}/{steps}", "bold"), ("  σ ", "dim"), sigma,
        ("  distance ", "dim"), (sparkline([t.distance for t in trace]), "cyan"), f" {distance}",
        ("  seed ", "dim"), str(seed), ("  ", ""), sampler, ("  guidance ", "dim"), f"{guidance:g}",
        ("  ", ""), (state, "bold reverse" if state == "running" else "bold"),
    )
    if draft:
        line.append(f"  {draft}", "dim")
    return line


class SituationPanel(Static):
    pass


class StepStrip(Static):
    pass


class BeatSheet(Static):
    """The current state as a beat sheet (storydiff.render), as a writer would read it."""

    def show(self, scenes: list[Scene]) -> None:
        if not scenes:
            self.update("No scene yet: press space to start denoising.")
            return
        self.update(Text("\n".join(render_beat_sheet(s) for s in scenes)))
