"""Events (OCC, Ortony, Clore & Collins 1988): an appraised event raises emotion families at its beat.

For each emotion `affect.appraised_emotions` raises that heads a family in `affect.EMOTION_FAMILY`,
the family's summed felt intensity is at least the appraisal's bound. Compounds (anger, remorse,
gratitude, gratification) get no row of their own: they sit in both components' families, so the
rows reward them without forcing them over their parts.
"""
from __future__ import annotations

from ..affect import EMOTION_FAMILY, appraised_emotions
from .rows import INF, RowBuilder, SceneContext, number


def add_rows(rows: RowBuilder, scene: SceneContext) -> None:
    """`event:sale.mara.distress-family>=0.4@3`."""
    for event in scene.situation.events:
        if not 1 <= event.beat <= scene.beats:
            raise scene.fail(event, "bad-beat", f"event '{event.id}' is at beat {event.beat}; "
                             f"this situation has beats 1-{scene.beats}")
        for appraisal in event.appraisals:
            cid = appraisal.character
            if cid not in scene.situation.cast:
                raise scene.fail(appraisal, "unknown-character", f"'{cid}' appraises event '{event.id}' "
                                 f"but is not in the cast ({', '.join(scene.situation.cast)})")
            raised = appraised_emotions(appraisal, event.status, event.agent == cid, has_agent=event.agent is not None)
            for head, bound in raised.items():
                if head not in EMOTION_FAMILY:
                    continue
                terms = {scene.col(f"{cid}.felt.{e}", event.beat): 1.0 for e in EMOTION_FAMILY[head]}
                rows.add(f"event:{event.id}.{cid}.{head}-family>={number(bound)}@{event.beat}", terms, bound, INF,
                         appraisal)
