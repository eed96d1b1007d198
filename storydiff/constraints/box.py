"""Box bounds (DESIGN §2): felt and shown intensities in [0, 1], mood and stance in [-1, 1]."""
from __future__ import annotations

from .rows import RowBuilder, SceneContext


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """One row per column, `box:mara.felt.anger@3`; the projection sees the box as ordinary rows."""
    for col, name in enumerate(scene.layout.names):
        emotion = ".felt." in name or ".shown." in name
        rows.add(f"box:{name}", {col: 1.0}, 0.0 if emotion else -1.0, 1.0)
