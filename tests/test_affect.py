"""The literature's tables and rules in storydiff.affect."""
from __future__ import annotations

import pytest

from storydiff.affect import (
    COMPOUNDS,
    EMOTION_FAMILY,
    EMOTION_PAD,
    PAD_SPAN,
    appraised_emotions,
    audiences_for,
    default_mood,
    display_value,
    mood_dynamics,
    pull_scale,
    stability,
    static_stance,
)
from storydiff.models import (
    Appraisal,
    Cast,
    Character,
    DisplayRule,
    MoodDynamics,
    Personality,
    Relation,
    Situation,
)
from storydiff.vocab import OCC_EMOTIONS


def test_pad_table_is_almas():
    assert set(EMOTION_PAD) == set(OCC_EMOTIONS)
    assert EMOTION_PAD["anger"] == (-0.51, 0.59, 0.25)
    assert EMOTION_PAD["fear"] == (-0.64, 0.6, -0.43)
    assert EMOTION_PAD["fears-confirmed"] == (-0.5, -0.3, -0.7)
    assert EMOTION_PAD["relief"] == (0.2, -0.3, 0.4)
    assert EMOTION_PAD["gratification"] == (0.6, 0.5, 0.4)
    assert PAD_SPAN == pytest.approx(4.63)  # dominance of the negative emotions


def test_families_hold_occ_emotions_and_compounds_sit_in_both_components():
    assert all(e in OCC_EMOTIONS for members in EMOTION_FAMILY.values() for e in members)
    for (attribution, wellbeing), compound in COMPOUNDS.items():
        assert compound in EMOTION_FAMILY[attribution] and compound in EMOTION_FAMILY[wellbeing]
    assert {"distress", "anger", "remorse", "disappointment", "fears-confirmed"} <= set(EMOTION_FAMILY["distress"])


def test_stability_is_flipped_rescaled_neuroticism():
    assert stability(0.0) == 1.0 and stability(1.0) == -1.0 and stability(0.5) == 0.0


def test_mehrabian_signs_high_neuroticism_is_less_pleasant_more_aroused():
    calm, anxious = default_mood(Personality(neuroticism=0.1)), default_mood(Personality(neuroticism=0.9))
    assert anxious[0] < calm[0]
    assert anxious[1] > calm[1]
    assert anxious[2] == calm[2]  # dominance does not load on stability
    # Mara: O .4, C .8, E .3, A .5, N .6 → O -.2, C .6, E -.4, A 0, S -.2
    mara = default_mood(Personality(openness=0.4, conscientiousness=0.8, extraversion=0.3, agreeableness=0.5,
                                    neuroticism=0.6))
    assert mara == pytest.approx((0.21 * -0.4 + 0.19 * -0.2, 0.15 * -0.2 - 0.57 * -0.2,
                                  0.25 * -0.2 + 0.17 * 0.6 + 0.60 * -0.4))
    extreme = default_mood(Personality(openness=1, conscientiousness=1, extraversion=1, agreeableness=0, neuroticism=0))
    assert all(-1 <= v <= 1 for v in extreme)


def test_undesirable_actual_event_raises_distress_with_desirability():
    mild = appraised_emotions(Appraisal(character="m", desirability=-0.4), "actual", False)
    strong = appraised_emotions(Appraisal(character="m", desirability=-0.8), "actual", False)
    assert set(strong) == {"distress"} and strong["distress"] == pytest.approx(0.4)
    assert mild["distress"] < strong["distress"]


def test_prospects_give_hope_and_fear_scaled_by_likelihood():
    fear = appraised_emotions(Appraisal(character="m", desirability=-0.6, likelihood=0.7), "prospective", False)
    hope = appraised_emotions(Appraisal(character="m", desirability=0.6, likelihood=0.7), "prospective", False)
    assert fear == {"fear": pytest.approx(0.21)} and hope == {"hope": pytest.approx(0.21)}


def test_attribution_and_compounds():
    blame_other = appraised_emotions(Appraisal(character="m", desirability=-0.8, praiseworthiness=-0.6), "actual", False)
    assert blame_other == pytest.approx({"distress": 0.4, "reproach": 0.3, "anger": 0.3})
    proud = appraised_emotions(Appraisal(character="m", desirability=0.6, praiseworthiness=0.8), "actual", True)
    assert proud == pytest.approx({"joy": 0.3, "pride": 0.4, "gratification": 0.3})
    ashamed = appraised_emotions(Appraisal(character="m", desirability=-0.6, praiseworthiness=-0.8), "actual", True)
    assert set(ashamed) == {"distress", "shame", "remorse"}
    grateful = appraised_emotions(Appraisal(character="m", desirability=0.6, praiseworthiness=0.8), "actual", False)
    assert set(grateful) == {"joy", "admiration", "gratitude"}


def test_no_attribution_without_an_act_and_nothing_below_threshold():
    prospective = appraised_emotions(Appraisal(character="m", desirability=-0.6, praiseworthiness=-0.9),
                                     "prospective", False)
    assert set(prospective) == {"fear"}
    no_agent = appraised_emotions(Appraisal(character="m", praiseworthiness=-0.9), "actual", False, has_agent=False)
    assert no_agent == {}
    assert appraised_emotions(Appraisal(character="m", desirability=0.05), "actual", False) == {}
    assert set(appraised_emotions(Appraisal(character="m", appealingness=-0.5), "actual", False)) == {"hate"}
    assert set(appraised_emotions(Appraisal(character="m", appealingness=0.5), "actual", False)) == {"love"}


def _pair(publicness: float, mara: Relation | None, ilan: Relation | None = None) -> tuple[Cast, Situation]:
    cast = Cast(characters={
        "mara": Character(id="mara", name="Mara", relations=[mara] if mara else []),
        "ilan": Character(id="ilan", name="Ilan", relations=[ilan] if ilan else []),
    })
    return cast, Situation(id="s", cast=["mara", "ilan"], beats=2, publicness=publicness)


def test_audiences_from_publicness_and_static_relations():
    cast, sit = _pair(0.5, None)
    assert audiences_for("mara", sit, cast) == {"public"}
    cast, sit = _pair(0.2, Relation(to="ilan", dominance=-0.3, liking=0.6, trust=0.6))
    assert audiences_for("mara", sit, cast) == {"private", "superior", "intimate"}
    cast, sit = _pair(0.9, Relation(to="ilan", dominance=0.3, liking=0.9, trust=0.9))
    assert audiences_for("mara", sit, cast) == {"public", "inferior"}  # never intimate in public
    cast, sit = _pair(0.2, None, Relation(to="mara", dominance=0.5))  # Ilan dominates Mara: mirrored
    assert audiences_for("mara", sit, cast) == {"private", "superior"}
    assert audiences_for("ilan", sit, cast) == {"private", "inferior"}


def test_static_stance_is_the_written_relation_else_the_mirror_of_the_others():
    cast, _ = _pair(0.2, Relation(to="ilan", liking=0.4, dominance=0.2, trust=0.6),
                    Relation(to="mara", liking=-0.3, dominance=0.5, trust=0.1))
    assert static_stance(cast, "mara", "ilan") == (0.4, 0.2, 0.6)  # her own, though he wrote one too
    cast, _ = _pair(0.2, None, Relation(to="mara", liking=-0.3, dominance=0.5, trust=0.1))
    assert static_stance(cast, "mara", "ilan") == (-0.3, -0.5, 0.1)  # he leads her: she defers
    assert static_stance(cast, "ilan", "mara") == (-0.3, 0.5, 0.1)
    cast, _ = _pair(0.2, None)
    assert static_stance(cast, "mara", "ilan") is None


def test_mood_dynamics_default_from_neuroticism():
    mid = mood_dynamics(Character(id="a", name="A"))
    assert (mid.pull, mid.band) == pytest.approx((MoodDynamics().pull, MoodDynamics().band))
    jumpy = mood_dynamics(Character(id="a", name="A", personality=Personality(neuroticism=0.9)))
    assert jumpy.pull > mid.pull and jumpy.band > mid.band
    written = MoodDynamics(pull=0.1, band=0.05)
    assert mood_dynamics(Character(id="a", name="A", mood_dynamics=written)) is written


@pytest.mark.parametrize("pull,band", [(0.3, 0.25), (0.9, 0.01), (0.05, 0.5), (1.0, 0.0)])
def test_pull_scale_keeps_every_emotion_centre_reachable(pull, band):
    scale = pull_scale(MoodDynamics(pull=pull, band=band))
    assert scale >= 1.0
    assert PAD_SPAN / scale <= 1.0 + band / pull + 1e-12


def test_display_defaults():
    assert display_value(DisplayRule(emotion="fear", audience="public", kind="neutralise")) == 0.05
    assert display_value(DisplayRule(emotion="fear", audience="public", kind="max", value=0.2)) == 0.2
