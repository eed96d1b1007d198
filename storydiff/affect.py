"""The affect literature as data: OCC appraisal, ALMA's emotion→PAD table, Mehrabian's temperament, display rules.

Both the constraint compiler and the simulator read these, so the scene a
sampler is held to and the trajectories the prior learns from agree. Public:
`EMOTION_PAD`, `EMOTION_FAMILY`, `default_mood`, `mood_dynamics`, `pull_scale`,
`appraised_emotions`, `audiences_for`, `display_value`, and the named constants.
"""
from __future__ import annotations

from typing import Literal

from .models import Appraisal, Cast, Character, DisplayRule, Located, MoodDynamics, Personality, Situation

PADPoint = tuple[float, float, float]

# Gebhard (2005), "ALMA – A Layered Model of Affect", AAMAS '05, pp. 29-36, Table 2: each OCC
# emotion as a (pleasure, arousal, dominance) point. Checked against the Alma.Net port
# (prbarcelon/Alma.Net, Alma.cs `MapToPadSpace`), which agrees on every entry. Several Python
# copies circulating on GitHub give hate as (-0.6, 0.6, 0.4); we keep the port's 0.3.
# ALMA's `liking`/`disliking` rows are left out: EmotionML's occ-categories have no such entries.
EMOTION_PAD: dict[str, PADPoint] = {
    "admiration": (0.5, 0.3, -0.2),
    "anger": (-0.51, 0.59, 0.25),
    "disappointment": (-0.3, 0.1, -0.4),
    "distress": (-0.4, -0.2, -0.5),
    "fear": (-0.64, 0.6, -0.43),
    "fears-confirmed": (-0.5, -0.3, -0.7),
    "gloating": (0.3, -0.3, -0.1),
    "gratification": (0.6, 0.5, 0.4),
    "gratitude": (0.4, 0.2, -0.3),
    "happy-for": (0.4, 0.2, 0.2),
    "hate": (-0.6, 0.6, 0.3),
    "hope": (0.2, 0.2, -0.1),
    "joy": (0.4, 0.2, 0.1),
    "love": (0.3, 0.1, 0.2),
    "pity": (-0.4, -0.2, -0.5),
    "pride": (0.4, 0.3, 0.3),
    "relief": (0.2, -0.3, 0.4),
    "remorse": (-0.3, 0.1, -0.6),
    "reproach": (-0.3, -0.1, 0.4),
    "resentment": (-0.2, -0.3, -0.2),
    "satisfaction": (0.3, -0.2, 0.4),
    "shame": (-0.3, 0.1, -0.6),
}

# Ortony, Clore & Collins (1988), The Cognitive Structure of Emotions, ch. 5-8: the emotion types an
# appraisal raises, each with the types built on it. A family's member counts in full toward the
# family: OCC's compounds contain their components (anger = distress + reproach about one event),
# and the prospect confirmations (disappointment, fears-confirmed; satisfaction, relief) are
# well-being reactions to a prospect's outcome. A compound sits in both of its components' families,
# so one unit of anger counts toward both the distress and the reproach rows.
EMOTION_FAMILY: dict[str, tuple[str, ...]] = {
    "joy": ("joy", "satisfaction", "relief", "gratification", "gratitude"),
    "distress": ("distress", "disappointment", "fears-confirmed", "anger", "remorse"),
    "hope": ("hope",),
    "fear": ("fear",),
    "pride": ("pride", "gratification"),
    "shame": ("shame", "remorse"),
    "admiration": ("admiration", "gratitude"),
    "reproach": ("reproach", "anger"),
    "love": ("love",),
    "hate": ("hate",),
}

# OCC compounds (Ortony et al. 1988, ch. 7): (attribution, well-being) → compound.
COMPOUNDS: dict[tuple[str, str], str] = {
    ("admiration", "joy"): "gratitude",
    ("reproach", "distress"): "anger",
    ("pride", "joy"): "gratification",
    ("shame", "distress"): "remorse",
}

# Our linearisation of OCC's intensity variables: an appraisal raises an emotion to at least
# EVENT_GAIN·|variable|·likelihood. OCC give no numbers; 0.5 keeps a certain, extreme event
# (|desirability| = 1) at a clearly felt but not maximal 0.5, leaving room for the character.
EVENT_GAIN = 0.5
# OCC's threshold: a potential below it elicits no emotion.
MIN_INTENSITY = 0.05


def appraised_emotions(
    appraisal: Appraisal,
    status: Literal["actual", "prospective"],
    agent_is_self: bool,
    *,
    has_agent: bool = True,
) -> dict[str, float]:
    """Emotions one appraisal raises, each with a lower bound on its felt intensity (OCC 1988).

    Desirability gives joy/distress (actual) or hope/fear (prospective); praiseworthiness of an
    action that happened gives pride/shame (own) or admiration/reproach (another's), and then the
    compounds gratification, remorse, gratitude, anger at the weaker component's bound;
    appealingness gives love/hate. Confirmations (satisfaction, relief, disappointment,
    fears-confirmed) and fortunes-of-others emotions need what was hoped for and how others fare,
    which a situation does not say, so they are never raised here (they stay in the families).
    """
    out: dict[str, float] = {}

    def raise_(emotion: str, variable: float) -> None:
        bound = EVENT_GAIN * abs(variable) * appraisal.likelihood
        if bound >= MIN_INTENSITY:
            out[emotion] = bound

    d = appraisal.desirability
    if d:
        if status == "actual":
            raise_("joy" if d > 0 else "distress", d)
        else:
            raise_("hope" if d > 0 else "fear", d)
    p = appraisal.praiseworthiness
    if p and has_agent and status == "actual":
        if agent_is_self:
            raise_("pride" if p > 0 else "shame", p)
        else:
            raise_("admiration" if p > 0 else "reproach", p)
    if appraisal.appealingness:
        raise_("love" if appraisal.appealingness > 0 else "hate", appraisal.appealingness)
    for (attribution, wellbeing), compound in COMPOUNDS.items():
        if attribution in out and wellbeing in out:
            out[compound] = min(out[attribution], out[wellbeing])
    return out


def stability(neuroticism: float) -> float:
    """Emotional stability in [-1, 1] from the XML's neuroticism in [0, 1]: the one place this flips."""
    return -(2.0 * neuroticism - 1.0)


def default_mood(personality: Personality) -> PADPoint:
    """Baseline PAD mood from the Big Five (Mehrabian 1996, "Analysis of the big-five personality
    factors in terms of the PAD temperament model", Australian Journal of Psychology 48(2), 86-92).

    P = .21E + .59A + .19S;  A = .15O + .30A − .57S;  D = .25O + .17C + .60E − .32A,
    with traits rescaled from [0, 1] to [-1, 1] and S = emotional stability = −neuroticism.
    (ALMA 2005 and ports such as Alma.Net plug neuroticism in for S, flipping the sign of
    the stability terms; Mehrabian's factor is stability.) Clipped to [-1, 1].
    """
    o, c, e, a = (2.0 * t - 1.0 for t in (personality.openness, personality.conscientiousness,
                                          personality.extraversion, personality.agreeableness))
    s = stability(personality.neuroticism)
    pad = (0.21 * e + 0.59 * a + 0.19 * s,
           0.15 * o + 0.30 * a - 0.57 * s,
           0.25 * o + 0.17 * c + 0.60 * e - 0.32 * a)
    return tuple(max(-1.0, min(1.0, v)) for v in pad)  # type: ignore[return-value]


def baseline(character: Character) -> tuple[tuple[float, float, float], Located]:
    """The mood a character starts from without a previous scene, and the element that says so."""
    if character.mood is not None:
        m = character.mood
        return (m.pleasure, m.arousal, m.dominance), m
    return default_mood(character.personality), character.personality


def mood_dynamics(character: Character) -> MoodDynamics:
    """The character's ALMA pull k and band δ; unless written, from neuroticism.

    Neuroticism goes with larger, faster mood swings (Eid & Diener 1999, JPSP 76(4); Kuppens,
    Van Mechelen, Nezlek et al. 2007, Emotion 7(2)). The slopes are ours; at neuroticism 0.5
    they give MoodDynamics' defaults (k = 0.3, δ = 0.25).
    """
    if character.mood_dynamics is not None:
        return character.mood_dynamics
    n = character.personality.neuroticism
    return MoodDynamics(pull=0.2 + 0.2 * n, band=0.15 + 0.2 * n)


def _pad_span() -> float:
    """Largest |Σ_e felt_e·PAD_e| over felt ∈ [0, 1]^22 on any one PAD axis."""
    return max(max(sum(v[i] for v in EMOTION_PAD.values() if v[i] > 0),
                   -sum(v[i] for v in EMOTION_PAD.values() if v[i] < 0)) for i in range(3))


PAD_SPAN = _pad_span()


def pull_scale(dynamics: MoodDynamics) -> float:
    """Divisor S of the linear emotion centre E = Σ_e felt_e·PAD_e / S in the mood rule.

    ALMA pulls mood toward the *mean* PAD of the active emotions, which is not linear in felt.
    The linear rule `mood@b − (1−k)·mood@b−1 − k·E ∈ [−δ, δ]` has a mood in [-1, 1] for every
    previous mood in [-1, 1] exactly when |E| ≤ 1 + δ/k, so S = PAD_SPAN / (1 + δ/k) makes the
    rule satisfiable for *every* felt vector: mood dynamics never caps emotions. S is at least 1,
    so one emotion at full intensity pulls no further than its own ALMA point.
    """
    if dynamics.pull <= 0:
        return 1.0
    return max(1.0, PAD_SPAN / (1.0 + dynamics.band / dynamics.pull))


# Audiences for display rules (Matsumoto 1990, Motivation and Emotion 14(3); Matsumoto et al. 2005,
# DRAI, Emotion 5(1)), decided from the situation and the static relations only, never from sampled
# stance: a scene is public at publicness ≥ PUBLIC_AT, else private; a character before someone it
# rates dominance ≤ −DOMINANCE_AT toward has a superior present (≥ DOMINANCE_AT: an inferior);
# a private scene with someone liked and trusted at ≥ INTIMATE_AT each is intimate.
PUBLIC_AT = 0.5
DOMINANCE_AT = 0.3
INTIMATE_AT = 0.6


def static_stance(cast: Cast, character_id: str, other: str) -> tuple[float, float, float] | None:
    """The stance (liking, dominance, trust) `character_id` brings toward `other` into any scene.

    Its own written relation; where it wrote none, the mirror of the other's relation toward
    it (dominance negated: if you lead me, I defer to you; liking and trust as written, as
    liking is reciprocated: Kenny & La Voie 1984); None when neither wrote one.
    """
    mine = cast[character_id].relation_to(other)
    if mine is not None:
        return mine.liking, mine.dominance, mine.trust
    theirs = cast[other].relation_to(character_id) if other in cast else None
    if theirs is not None:
        return theirs.liking, -theirs.dominance, theirs.trust
    return None


def audiences_for(character_id: str, situation: Situation, cast: Cast) -> set[str]:
    """Which audiences watch `character_id` in this situation, from its `static_stance` toward each other."""
    public = situation.publicness >= PUBLIC_AT
    out = {"public" if public else "private"}
    for other in situation.cast:
        stance = static_stance(cast, character_id, other) if other != character_id else None
        if stance is None:
            continue
        liking, dominance, trust = stance
        if dominance <= -DOMINANCE_AT:
            out.add("superior")
        if dominance >= DOMINANCE_AT:
            out.add("inferior")
        if not public and liking >= INTIMATE_AT and trust >= INTIMATE_AT:
            out.add("intimate")
    return out


# Ekman & Friesen (1969), "The repertoire of nonverbal behavior", Semiotica 1: display rules
# de-intensify, intensify, neutralise, mask; `max` and `simulate` complete DESIGN §3's list.
# Values a rule takes when its file gives none: c for max/simulate, k for de-intensify/mask,
# ε for neutralise (and for the hidden emotion of a mask): "shown ≤ ε" reads "kept off the face".
NEUTRALISE_EPSILON = 0.05
DISPLAY_DEFAULTS: dict[str, float] = {
    "max": 0.3,
    "de-intensify": 0.5,
    "neutralise": NEUTRALISE_EPSILON,
    "mask": 0.5,
    "simulate": 0.3,
}


def display_value(rule: DisplayRule) -> float:
    """The rule's c, k or ε, falling back to DISPLAY_DEFAULTS (intensify has none: 0)."""
    return rule.value if rule.value is not None else DISPLAY_DEFAULTS.get(rule.kind, 0.0)


# Stance toward another cast member stays within STANCE_BAND of the static relation the XML writes
# and moves at most STANCE_STEP per beat: relationships drift within a scene, they do not flip.
STANCE_BAND = 0.5
STANCE_STEP = 0.2
