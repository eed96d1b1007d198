"""A character's felt ranges and "never" (an emotion it does not feel: max 0), at every beat."""
from __future__ import annotations

from .rows import INF, RowBuilder, SceneContext


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """`mara.range.felt.anger.max@3` (≤ max), `.min@3` (≥ min), `.never@3` (≤ 0); shown is not bounded here."""
    for cid in scene.situation.cast:
        for r in scene.character(cid).ranges:
            scene.check_emotion(r, r.emotion)
            bounds = []
            if r.never:
                bounds.append(("never", -INF, 0.0))
            elif r.max < 1.0:
                bounds.append(("max", -INF, r.max))
            if r.min > 0.0:
                bounds.append(("min", r.min, INF))
            var = f"{cid}.felt.{r.emotion}"
            for b in range(1, scene.beats + 1):
                col = scene.col(var, b)
                for kind, lo, hi in bounds:
                    rows.add(f"{cid}.range.felt.{r.emotion}.{kind}@{b}", {col: 1.0}, lo, hi, r)
