"""Volatility: how far a felt emotion may move between consecutive beats, |v@b+1 − v@b| ≤ step."""
from __future__ import annotations

from ..vocab import OCC_EMOTIONS
from .rows import RowBuilder, SceneContext


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """`mara.volatility.felt.joy@4-5`; a per-emotion step replaces the character's global one.

    A character that writes no volatility has no such rows: its emotions may jump.
    """
    for cid in scene.situation.cast:
        rules = scene.character(cid).volatility
        for v in rules:
            scene.check_emotion(v, v.emotion)
        general = next((v for v in reversed(rules) if v.emotion is None), None)
        for emotion in OCC_EMOTIONS:
            rule = next((v for v in reversed(rules) if v.emotion == emotion), general)
            if rule is None:
                continue
            var = f"{cid}.felt.{emotion}"
            for b in range(1, scene.beats):
                terms = {scene.col(var, b + 1): 1.0, scene.col(var, b): -1.0}
                rows.add(f"{cid}.volatility.felt.{emotion}@{b}-{b + 1}", terms, -rule.max_step, rule.max_step, rule)
