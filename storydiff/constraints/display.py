"""Display rules (Ekman & Friesen 1969; Matsumoto 1990): what a character shows of what it feels.

Each rule is linear in one character's felt and shown values at one beat and applies at every beat
of a situation whose audience (affect.audiences_for, static for the scene) it names. A character's
own rule for an emotion and audience replaces its culture's for the same pair: display rules are
learnt in a culture and individuals refine them (Matsumoto et al. 2005). Without any rule, shown may
differ from felt freely within [0, 1]: the prior, not the constraint set, keeps faces honest.
"""
from __future__ import annotations

from ..affect import NEUTRALISE_EPSILON, audiences_for, display_value
from ..models import DisplayRule
from .rows import INF, RowBuilder, SceneContext


def rules_for(scene: SceneContext, character_id: str) -> list[tuple[str, DisplayRule]]:
    """(row-name prefix, rule): the culture's rules the character does not rewrite, then its own."""
    character = scene.character(character_id)
    own = {(r.emotion, r.audience) for r in character.display_rules}
    culture = scene.cast.culture_of(character_id)
    inherited = [] if culture is None else [
        (f"culture:{culture.id}.{character_id}", r) for r in culture.display_rules if (r.emotion, r.audience) not in own]
    return inherited + [(character_id, r) for r in character.display_rules]


def rule_rows(rule: DisplayRule, felt: int, shown: int, show: int | None) -> list[tuple[str, dict[int, float], float, float]]:
    """(name suffix, terms, lower, upper) of one rule at one beat, given the columns it touches."""
    value = display_value(rule)
    if rule.kind == "max":
        return [("", {shown: 1.0}, -INF, value)]
    if rule.kind == "de-intensify":
        return [("", {shown: 1.0, felt: -value}, -INF, 0.0)]
    if rule.kind == "intensify":
        return [("", {shown: 1.0, felt: -1.0}, 0.0, INF)]
    if rule.kind == "neutralise":
        return [("", {shown: 1.0}, -INF, value)]
    if rule.kind == "simulate":
        return [("", {shown: 1.0}, value, INF)]
    hide = [(".hide", {shown: 1.0}, -INF, NEUTRALISE_EPSILON)]  # mask
    return hide if show is None else hide + [(".show", {show: 1.0, felt: -value}, 0.0, INF)]


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """`mara.display.fear.public@2`, `culture:harbor-folk.mara.display.fear.public@2`; a mask gives `.hide`/`.show`."""
    for cid in scene.situation.cast:
        audiences = audiences_for(cid, scene.situation, scene.cast)
        for prefix, rule in rules_for(scene, cid):
            scene.check_emotion(rule, rule.emotion)
            scene.check_emotion(rule, rule.show)
            if rule.audience not in audiences:
                continue
            for b in range(1, scene.beats + 1):
                felt = scene.col(f"{cid}.felt.{rule.emotion}", b)
                shown = scene.col(f"{cid}.shown.{rule.emotion}", b)
                show = scene.col(f"{cid}.shown.{rule.show}", b) if rule.kind == "mask" and rule.show else None
                for suffix, terms, lo, hi in rule_rows(rule, felt, shown, show):
                    rows.add(f"{prefix}.display.{rule.emotion}.{rule.audience}{suffix}@{b}", terms, lo, hi, rule)
