"""What a writer types into the pin and edit dialogs, read strictly, with messages that say what to type.

A variable may be written in full (`mara.felt.anger@3`) or relative to the selected
cell (`felt.anger`, `anger` for the shown layer, `stance.ilan.trust`). A pin's value
is `0.4` (exactly), `>=0.5`, `<=0.2` or `0.3..0.6`.
"""
from __future__ import annotations

import math

from storydiff.layout import StateLayout, parse_variable
from storydiff.models import Pin

# Ranges per layer (DESIGN §2).
LIMITS = {"felt": (0.0, 1.0), "shown": (0.0, 1.0), "mood": (-1.0, 1.0), "stance": (-1.0, 1.0)}


def expand_variable(text: str, character: str, beat: int, layout: StateLayout) -> str:
    """A full variable name from what the writer typed; ValueError says what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError("name a variable, e.g. felt.anger or mara.shown.fear@3")
    if "@" not in text:
        parts = text.split(".")
        if parts[0] in LIMITS:
            text = f"{character}.{text}@{beat}"
        elif len(parts) == 1:
            text = f"{character}.shown.{text}@{beat}"
        else:  # mara.felt.anger: at the selected beat
            text = f"{text}@{beat}"
    name = str(parse_variable(text))
    try:
        layout.index(name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return name


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a number; type e.g. 0.4") from None
    if not math.isfinite(value):
        raise ValueError(f"'{text}' is not a finite number")
    return value


def _check_range(value: float, name: str) -> float:
    layer = parse_variable(name).layer
    lo, hi = LIMITS[layer]
    if not lo <= value <= hi:
        raise ValueError(f"{value:g} is outside {layer}'s range {lo:g}..{hi:g}")
    return value


def parse_value(text: str, name: str) -> float:
    """One number within the variable's range (for edits)."""
    return _check_range(_number(text.strip()), name)


def parse_pin(text: str, name: str) -> Pin:
    """`0.4`, `=0.4`, `>=0.5`, `<=0.2` or `0.3..0.6` as a pin on `name`."""
    text = text.strip()
    if not text:
        raise ValueError("type a value: 0.4, >=0.5, <=0.2 or 0.3..0.6")
    if text.startswith((">=", "≥")):
        return Pin(var=name, min=_check_range(_number(text.lstrip(">=≥")), name))
    if text.startswith(("<=", "≤")):
        return Pin(var=name, max=_check_range(_number(text.lstrip("<=≤")), name))
    if ".." in text:
        lo_text, hi_text = text.split("..", 1)
        lo, hi = (_check_range(_number(t.strip()), name) for t in (lo_text, hi_text))
        if lo > hi:
            raise ValueError(f"{lo:g}..{hi:g} is empty: write the smaller bound first")
        return Pin(var=name, min=lo, max=hi)
    return Pin(var=name, equal=_check_range(_number(text.lstrip("=")), name))


def describe_pin(pin: Pin) -> str:
    """`mara.felt.anger@8 ≥ 0.5` as a writer reads it."""
    if pin.equal is not None:
        return f"{pin.var} = {pin.equal:g}"
    if pin.min is not None and pin.max is not None:
        return f"{pin.var} in {pin.min:g}..{pin.max:g}"
    if pin.min is not None:
        return f"{pin.var} ≥ {pin.min:g}"
    return f"{pin.var} ≤ {pin.max:g}"
