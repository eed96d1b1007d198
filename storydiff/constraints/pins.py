"""An author's pins: keyframes on single variables, `<pin var="mara.felt.anger@8" min="0.5"/>`."""
from __future__ import annotations

from ..layout import parse_variable
from ..models import Pin
from .rows import RowBuilder, SceneContext, number


def pin_name(pin: Pin) -> str:
    """`pin:mara.felt.anger>=0.5@8`, `pin:…<=0.2@5`, `pin:…=0.5@8` or `pin:…>=0.2<=0.5@8`."""
    stem, beat = pin.var.strip().rsplit("@", 1)
    if pin.equal is not None:
        op = f"={number(pin.equal)}"
    else:
        op = (f">={number(pin.min)}" if pin.min is not None else "") + (f"<={number(pin.max)}" if pin.max is not None else "")
    return f"pin:{stem}{op}@{beat}"


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    for pin in scene.situation.pins:
        try:
            var = parse_variable(pin.var)
        except ValueError as e:
            raise scene.fail(pin, "bad-pin", str(e)) from None
        if var.character not in scene.situation.cast or var.beat > scene.beats:
            raise scene.fail(pin, "bad-pin", f"pin '{pin.var}' names no variable of this scene "
                             f"({scene.layout.describe()}; cast {', '.join(scene.situation.cast)})")
        lower, upper = pin.bounds
        if lower == -float("inf") and upper == float("inf"):
            continue
        rows.add(pin_name(pin), {scene.layout.index(str(var)): 1.0}, lower, upper, pin)
