"""Continuity with the previous scene of a story: stance at beat 1 starts where the last scene left it.

`previous` maps names without a beat (`mara.mood.pleasure`, `mara.stance.ilan.trust`) to the
previous scene's last-beat values; `carried_state` makes it from a sampled scene. Mood's carry-over
lives in the mood rule itself (mood.py): the previous mood is its mood@0.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..affect import STANCE_STEP
from ..vocab import STANCE
from .rows import RowBuilder, SceneContext


def carried_state(columns: Sequence[str], values: Sequence[float],
                  carry: Sequence[str] = ("mood", "stance")) -> dict[str, float]:
    """The last beat's values of the `carry` layers, keyed without the beat: the next scene's `previous`."""
    last = max(int(c.rsplit("@", 1)[1]) for c in columns)
    out = {}
    for column, value in zip(columns, values):
        stem, beat = column.rsplit("@", 1)
        if int(beat) == last and stem.split(".")[1] in carry:
            out[stem] = float(value)
    return out


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """`continuity:mara.stance.ilan.trust@1`: within one stance step of the carried value."""
    for cid in scene.situation.cast:
        for other in scene.others(cid):
            for item in STANCE:
                var = f"{cid}.stance.{other}.{item}"
                if var in scene.previous:
                    v = scene.previous[var]
                    rows.add(f"continuity:{var}@1", {scene.col(var, 1): 1.0}, v - STANCE_STEP, v + STANCE_STEP)
