"""Mood follows felt emotion: ALMA's pull (Gebhard 2005, §3.3), made linear.

    mood@b − (1−k)·mood@b−1 − k·E@b ∈ [−δ, δ],   E@b = Σ_e felt_e@b · PAD_e / S

per PAD axis, with PAD_e from ALMA's table, k and δ from affect.mood_dynamics and S from
affect.pull_scale (chosen so the band holds for every felt vector: mood never caps emotion).
ALMA moves mood toward the intensity-weighted centre of the active emotions, a ratio of felt
values; the sum over S is its linear stand-in. The band is also the mood's smoothness bound.
At beat 1, mood@0 is the previous scene's last mood when `previous` carries it, else the
character's baseline (its XML mood, else Mehrabian's default from personality).
"""
from __future__ import annotations

from ..affect import EMOTION_PAD, baseline, mood_dynamics, pull_scale
from ..vocab import OCC_EMOTIONS, PAD
from .rows import RowBuilder, SceneContext


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """`mara.mood-pull.pleasure@b`; at beat 1 `continuity:mara.mood.pleasure@1` when `previous` has it."""
    for cid in scene.situation.cast:
        character = scene.character(cid)
        dynamics = mood_dynamics(character)
        k, delta, scale = dynamics.pull, dynamics.band, pull_scale(dynamics)
        rule = character.mood_dynamics or character.personality
        start, start_source = baseline(character)
        for axis, dim in enumerate(PAD):
            var = f"{cid}.mood.{dim}"
            pull = {e: -k * EMOTION_PAD[e][axis] / scale for e in OCC_EMOTIONS if k and EMOTION_PAD[e][axis]}
            for b in range(1, scene.beats + 1):
                terms = {scene.col(var, b): 1.0}
                terms.update({scene.col(f"{cid}.felt.{e}", b): c for e, c in pull.items()})
                if b > 1:
                    if k < 1:
                        terms[scene.col(var, b - 1)] = -(1.0 - k)
                    rows.add(f"{cid}.mood-pull.{dim}@{b}", terms, -delta, delta, rule)
                    continue
                carried = scene.previous.get(var)
                m0 = max(-1.0, min(1.0, start[axis] if carried is None else carried))
                centre = (1.0 - k) * m0
                name = f"{cid}.mood-pull.{dim}@1" if carried is None else f"continuity:{var}@1"
                rows.add(name, terms, centre - delta, centre + delta, start_source if carried is None else None)
