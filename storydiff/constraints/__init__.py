"""Compile characters, cultures and a situation into the constraint polytope (DESIGN §4).

Every rule family is one module with `add_rows(rows, scene)`; FAMILIES runs them in order, so a
new family is a new module and one entry there. Row names by family:

    box:mara.felt.anger@3                          box bounds ([0,1] felt/shown, [-1,1] mood/stance)
    mara.range.felt.anger.max@3  .min@3  .never@3   ranges and "never"
    mara.volatility.felt.joy@4-5                   |Δ felt| per beat
    mara.display.fear.public@2  (mask: .hide/.show) the character's display rules
    culture:harbor-folk.mara.display.fear.public@2 its culture's display rules
    mara.mood-pull.pleasure@3                      ALMA's pull of emotion on mood, as a band
    event:sale.mara.distress-family>=0.4@3         OCC: an appraisal raises an emotion family
    mara.relation.ilan.trust@3                     stance near the written relationship
    mara.volatility.stance.ilan.trust@3-4          |Δ stance| per beat
    pin:mara.felt.anger>=0.5@8                     the author's pins
    continuity:mara.stance.ilan.trust@1            carried over from the previous scene (also mood)
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ..layout import StateLayout
from ..models import Cast, Situation
from ..polytope import Polytope
from ..vocab import PAD, STANCE
from . import box, continuity, display, events, mood, pins, ranges, relations, volatility
from .continuity import carried_state
from .rows import RowBuilder, SceneContext

Family = Callable[[RowBuilder, SceneContext], None]
FAMILIES: tuple[Family, ...] = (
    box.add_rows, ranges.add_rows, volatility.add_rows, display.add_rows, mood.add_rows,
    events.add_rows, relations.add_rows, pins.add_rows, continuity.add_rows,
)

__all__ = ["FAMILIES", "carried_state", "compile_constraints", "row_family"]


def compile_constraints(cast: Cast, situation: Situation, previous: Mapping[str, float] | None = None,
                        layout: StateLayout | None = None) -> Polytope:
    """The polytope `lower ≤ A·y ≤ upper` of scenes this cast may play in this situation.

    `previous` carries the previous scene's last-beat mood and stance, keyed like
    `mara.mood.pleasure` and `mara.stance.ilan.trust` (see `carried_state`); keys for characters
    not in this scene are ignored (a story's next scene may have a smaller cast), keys of any other
    shape are a ValueError. Raises ValidationError, with the file position, for rules that name
    what the scene lacks.
    """
    _check_previous(previous or {})
    layout = layout or StateLayout(situation.cast, situation.beats)
    if layout.cast != list(situation.cast) or layout.beats != situation.beats:
        raise ValueError(f"layout ({layout.describe()}) does not match situation '{situation.id}'")
    scene = SceneContext(cast, situation, layout, dict(previous or {}))
    missing = [c for c in situation.cast if c not in cast]
    if missing:
        raise scene.fail(situation, "unknown-character", f"no character file for {', '.join(missing)}")
    rows = RowBuilder()
    for add_rows in FAMILIES:
        add_rows(rows, scene)
    return rows.polytope(layout.names)


def _check_previous(previous: Mapping[str, float]) -> None:
    """Every key names a mood or a stance without a beat, every value is a number: a typo must not
    silently drop the carry-over."""
    for key, value in previous.items():
        parts = key.split(".")
        mood = len(parts) == 3 and parts[1] == "mood" and parts[2] in PAD
        stance = len(parts) == 4 and parts[1] == "stance" and parts[3] in STANCE
        if not (mood or stance) or "@" in key:
            raise ValueError(f"previous[{key!r}]: carry-over keys name a mood or a stance without a beat, "
                             f"like 'mara.mood.pleasure' or 'mara.stance.ilan.trust'")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"previous[{key!r}] = {value!r} is not a finite number")


def row_family(name: str) -> str:
    """The family of a row from its name: `box`, `pin`, `event`, `culture`, `continuity`, or a
    character rule's kind (`range`, `volatility`, `display`, `mood-pull`, `relation`)."""
    name = name.split("/")[-1]  # Polytope.block_diag prefixes `sceneK/`
    if ":" in name.split(".", 1)[0]:
        return name.split(":", 1)[0]
    return name.split(".")[1]
