"""Stance stays consistent with the static relationship the XML writes, and moves smoothly.

Within a scene a stance (liking, dominance, trust toward another cast member) stays within
affect.STANCE_BAND of the written relation and changes by at most affect.STANCE_STEP per beat.
Toward someone the character writes no relation to, stance is only boxed and smoothed.
"""
from __future__ import annotations

from ..affect import STANCE_BAND, STANCE_STEP
from ..vocab import STANCE
from .rows import RowBuilder, SceneContext


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """`mara.relation.ilan.trust@3` (band) and `mara.volatility.stance.ilan.trust@3-4` (step)."""
    for cid in scene.situation.cast:
        character = scene.character(cid)
        for other in scene.others(cid):
            relation = character.relation_to(other)
            for item in STANCE:
                var = f"{cid}.stance.{other}.{item}"
                if relation is not None:
                    centre = getattr(relation, item)
                    for b in range(1, scene.beats + 1):
                        rows.add(f"{cid}.relation.{other}.{item}@{b}", {scene.col(var, b): 1.0},
                                 centre - STANCE_BAND, centre + STANCE_BAND, relation)
                for b in range(1, scene.beats):
                    rows.add(f"{cid}.volatility.stance.{other}.{item}@{b}-{b + 1}",
                             {scene.col(var, b + 1): 1.0, scene.col(var, b): -1.0}, -STANCE_STEP, STANCE_STEP)
