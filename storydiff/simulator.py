"""The simulator: random casts and situations, and the affect trajectories the literature predicts.

It is the teacher for the bundled prior (DESIGN §5), not the product. What it must get right is
direction and rough size (an insult raises distress and lowers trust, a public scene hides fear,
mood follows emotion) and that every trajectory lies inside the constraint set its cast and
situation compile to, because the sampler projects onto that set. The literature's tables (ALMA's
PAD points, OCC's appraisal rules, Mehrabian's temperament, audiences, display-rule defaults) live
in `affect` and are shared with the constraint compiler; this module adds what a generator needs:
distributions of traits, cultures, relations and events, and the dynamics between beats.
Constants marked "ours" are modelling choices, not published numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .affect import (
    EMOTION_FAMILY,
    EMOTION_PAD,
    EVENT_GAIN,
    NEUTRALISE_EPSILON,
    STANCE_BAND,
    STANCE_STEP,
    appraised_emotions,
    audiences_for,
    default_mood,
    display_value,
    mood_dynamics,
    pull_scale,
    static_stance,
)
from .constraints import compile_constraints
from .constraints.display import rules_for
from .constraints.mood import baseline
from .constraints.rows import SceneContext
from .description import describe
from .layout import FELT, MOOD, SHOWN, STANCE_START, StateLayout, n_features
from .models import (
    Appraisal,
    Cast,
    Character,
    Culture,
    DisplayRule,
    EmotionRange,
    Event,
    Mood,
    MoodDynamics,
    Personality,
    Pin,
    Relation,
    Situation,
    Volatility,
)
from .polytope import Polytope
from .projection import project
from .vocab import BIG_FIVE, HOFSTEDE, OCC_EMOTIONS, PAD, STANCE

E = len(OCC_EMOTIONS)
EMOTION = {e: k for k, e in enumerate(OCC_EMOTIONS)}
PAD_MATRIX = np.array([EMOTION_PAD[e] for e in OCC_EMOTIONS])  # [22, 3], ALMA (Gebhard 2005)
NEGATIVE = PAD_MATRIX[:, 0] < 0  # valence from ALMA's pleasure coordinate
LIKING, TRUST = STANCE.index("liking"), STANCE.index("trust")


def layout_for(situation: Situation) -> StateLayout:
    """The situation's StateLayout, shared between scenes: simulated casts are named c1, c2, …, so a
    corpus has only (cast sizes × lengths) distinct layouts, and building one costs as much as simulating."""
    return _layout(tuple(situation.cast), situation.beats)


@lru_cache(maxsize=512)
def _layout(cast: tuple[str, ...], beats: int) -> StateLayout:
    return StateLayout(list(cast), beats)


@dataclass(frozen=True)
class SimulatorConfig:
    """The generator's knobs; recorded in a corpus manifest so a corpus can be regenerated."""

    cast_weights: tuple[float, ...] = (0.35, 0.25, 0.18, 0.12, 0.10)  # casts of 2..6: two-handers lead (ours)
    large_cast_p: float = 0.05      # occasionally a crowd of 7-8
    max_characters: int = 8
    min_beats: int = 6
    max_beats: int = 24
    max_events: int = 4
    pin_p: float = 0.15
    no_culture_p: float = 0.1       # a character without a culture trains the culture-null condition
    second_culture_p: float = 0.3
    relation_p: float = 0.85        # each ordered pair writes a relation with this probability


DEFAULT_CONFIG = SimulatorConfig()


# --- traits ---------------------------------------------------------------------------------------------

# Big Five intercorrelations in the pattern of van der Linden, te Nijenhuis & Bakker (2010), J. Res.
# Pers. 44, 315-327 (meta-analysis, K = 212): conscientiousness, agreeableness and stability (−N) go
# together, as do extraversion and openness. Magnitudes rounded down (ours). Order: BIG_FIVE.
TRAIT_CORRELATION = np.array([
    [1.00, 0.15, 0.30, 0.10, -0.10],
    [0.15, 1.00, 0.20, 0.25, -0.30],
    [0.30, 0.20, 1.00, 0.15, -0.25],
    [0.10, 0.25, 0.15, 1.00, -0.25],
    [-0.10, -0.30, -0.25, -0.25, 1.00],
])
TRAIT_MEAN, TRAIT_SD = 0.5, 0.17  # on the XML's [0, 1] scale (ours)

# Hofstede, Hofstede & Minkov (2010), Cultures and Organizations, 3rd ed.: country scores spread
# roughly 50 ± 22 on each dimension; power distance and individualism correlate about −0.6 across
# countries (ch. 3-4). Other pairs are left uncorrelated. Order: HOFSTEDE.
HOFSTEDE_MEAN, HOFSTEDE_SD = 50.0, 22.0
HOFSTEDE_CORRELATION = np.eye(len(HOFSTEDE))
_PDI, _IDV = HOFSTEDE.index("power-distance"), HOFSTEDE.index("individualism")
HOFSTEDE_CORRELATION[_PDI, _IDV] = HOFSTEDE_CORRELATION[_IDV, _PDI] = -0.6

_TRAIT_FACTOR = np.linalg.cholesky(TRAIT_CORRELATION)
_HOFSTEDE_FACTOR = np.linalg.cholesky(HOFSTEDE_CORRELATION)


def _unit(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A uniform draw rounded to 2 decimals, as a writer would type it."""
    return round(float(rng.uniform(lo, hi)), 2)


def random_personality(rng: np.random.Generator) -> Personality:
    """Big Five with the meta-analytic correlations, so that conditioning sees realistic trait mixes."""
    z = TRAIT_MEAN + TRAIT_SD * _TRAIT_FACTOR @ rng.standard_normal(len(BIG_FIVE))
    return Personality(**dict(zip(BIG_FIVE, np.clip(z, 0.02, 0.98).round(3).tolist(), strict=True)))


def _hofstede(rng: np.random.Generator) -> dict[str, float]:
    z = HOFSTEDE_MEAN + HOFSTEDE_SD * _HOFSTEDE_FACTOR @ rng.standard_normal(len(HOFSTEDE))
    return dict(zip(HOFSTEDE, np.clip(z, 0, 100).round().tolist(), strict=True))


# --- display rules --------------------------------------------------------------------------------------

LOWERING = ("max", "de-intensify", "neutralise", "mask")  # rules that hold shown down (mask: the hidden one)


@dataclass(frozen=True)
class RuleTemplate:
    """A display rule a culture or person may hold, with probability base + Σ slope·level (level ∈ [0, 1])."""

    emotions: tuple[str, ...]
    audience: str
    kind: str
    base: float
    slopes: tuple[tuple[str, float], ...]
    values: tuple[float, float] | None = None
    show: tuple[str, ...] = ()


# Cultures (levels: Hofstede score / 100). Matsumoto (1990), Motivation & Emotion 14(3): high power
# distance restrains negative emotion toward superiors and allows anger toward inferiors. Matsumoto
# et al. (2008), J. Cross-Cult. Psych. 39(1), 32 countries: individualism goes with expressivity,
# most of all for positive emotions, and collectivism with regulating negative ones. Hofstede et al.
# (2010): restraint (low indulgence) curbs displays of gratification; feminine cultures frown on
# self-promotion, masculine ones on fear. Ekman & Friesen (1969); Friesen (1972): masking distress
# with a smile before an authority. Probabilities are ours.
CULTURE_RULES: tuple[RuleTemplate, ...] = (
    RuleTemplate(("anger", "distress", "fear", "disappointment"), "public", "de-intensify", 0.55,
                 (("individualism", -0.45),), (0.3, 0.7)),
    RuleTemplate(("anger", "reproach", "hate"), "superior", "neutralise", 0.1, (("power-distance", 0.5),)),
    RuleTemplate(("anger", "reproach"), "inferior", "intensify", 0.0, (("power-distance", 0.25),)),
    RuleTemplate(("joy", "happy-for", "gratitude"), "intimate", "intensify", 0.05,
                 (("individualism", 0.35),)),
    RuleTemplate(("joy", "gratification"), "public", "max", 0.45, (("indulgence", -0.4),), (0.3, 0.6)),
    RuleTemplate(("pride",), "public", "max", 0.45, (("masculinity", -0.35),), (0.2, 0.5)),
    RuleTemplate(("fear", "distress"), "public", "neutralise", 0.0, (("masculinity", 0.3),), (0.02, 0.1)),
    RuleTemplate(("distress", "disappointment"), "superior", "mask", 0.0, (("power-distance", 0.25),),
                 (0.3, 0.7), ("satisfaction", "joy")),
)

# Individuals (levels: Big Five traits). Tobin, Graziano et al. (2000), JPSP 79(4): agreeable people
# work harder to control anger; Gross & John (2003), JPSP 85(2): suppression goes with low
# extraversion; extraverts express positive emotion; agreeableness' modesty facet (NEO-PI-R A5)
# restrains pride. Probabilities are ours.
PERSONAL_RULES: tuple[RuleTemplate, ...] = (
    RuleTemplate(("fear", "distress"), "public", "neutralise", -0.05,
                 (("neuroticism", 0.15), ("extraversion", -0.1)), (0.02, 0.1)),
    RuleTemplate(("anger",), "public", "de-intensify", -0.1, (("agreeableness", 0.35),), (0.3, 0.7)),
    RuleTemplate(("anger", "reproach"), "superior", "neutralise", -0.05, (("agreeableness", 0.25),)),
    RuleTemplate(("joy", "happy-for"), "public", "intensify", -0.1, (("extraversion", 0.3),)),
    RuleTemplate(("joy", "admiration", "gratitude"), "public", "simulate", -0.1, (("agreeableness", 0.25),),
                 (0.1, 0.3)),
    RuleTemplate(("pride",), "public", "max", -0.1, (("agreeableness", 0.25),), (0.2, 0.5)),
    RuleTemplate(("distress",), "superior", "mask", -0.1, (("conscientiousness", 0.25),), (0.3, 0.7),
                 ("satisfaction",)),
)


def _draw_rule(rng: np.random.Generator, template: RuleTemplate,
               levels: dict[str, float]) -> DisplayRule | None:
    p = template.base + sum(slope * levels[name] for name, slope in template.slopes)
    if rng.random() >= p:
        return None
    value = None if template.values is None else round(float(rng.uniform(*template.values)), 3)
    show = str(rng.choice(template.show)) if template.show else None
    return DisplayRule(emotion=str(rng.choice(template.emotions)), audience=template.audience,
                       kind=template.kind, value=value, show=show)


def _one_direction(rules: list[DisplayRule]) -> bool:
    """True when no emotion is both held down and pushed up by the rules: audiences overlap (public and
    superior at once), so opposite rules on one emotion could leave no shown value to choose."""
    up, down = set(), set()
    for r in rules:
        (down if r.kind in LOWERING else up).add(r.emotion)
        if r.kind == "mask" and r.show:
            up.add(r.show)
    return not up & down


def _display_rules(rng: np.random.Generator, templates: tuple[RuleTemplate, ...], levels: dict[str, float],
                   inherited: list[DisplayRule]) -> list[DisplayRule]:
    """Rules drawn from templates, skipping any that would rewrite or contradict those already held."""
    out: list[DisplayRule] = []
    for template in templates:
        rule = _draw_rule(rng, template, levels)
        held = inherited + out
        if rule is not None and (rule.emotion, rule.audience) not in {(r.emotion, r.audience) for r in held} \
                and _one_direction(held + [rule]):
            out.append(rule)
    return out


def random_culture(rng: np.random.Generator, culture_id: str) -> Culture:
    """Hofstede scores and the display rules they make likely."""
    hofstede = _hofstede(rng)
    rules = _display_rules(rng, CULTURE_RULES, {d: v / 100 for d, v in hofstede.items()}, [])
    return Culture(id=culture_id, name=f"Culture {culture_id}", hofstede=hofstede, display_rules=rules)


# --- characters -----------------------------------------------------------------------------------------

# "Never" feelings are drawn from emotions no appraisal raises on its own (fortunes-of-others) or that
# share their OCC family with a compound (shame with remorse), so an event never demands the impossible.
NEVER_CANDIDATES = ("gloating", "resentment", "pity", "happy-for", "shame")
NEVER_P, CAP_P, CHRONIC_P = 0.15, 0.25, 0.05
CAP_RANGE = (0.55, 0.95)  # above EVENT_GAIN, the largest bound an appraisal sets: caps never block events
CHRONIC = (("fear", "hope", "distress"), (0.03, 0.15))  # a floor: the worrier's standing fear (ours)
# Volatility: written by most characters; more neurotic people swing more (Kuppens, Van Mechelen,
# Nezlek et al. 2007, Emotion 7(2)). Steps stay ≥ EVENT_GAIN so any event can land in one beat.
VOLATILITY_P, EMOTION_VOLATILITY_P = 0.6, 0.15
MOOD_P, MOOD_SD, DYNAMICS_P = 0.2, 0.15, 0.2


def _ranges(rng: np.random.Generator) -> list[EmotionRange]:
    out = []
    if rng.random() < NEVER_P:
        out.append(EmotionRange(emotion=str(rng.choice(NEVER_CANDIDATES)), never=True))
    taken = {r.emotion for r in out}
    if rng.random() < CAP_P:
        emotion = str(rng.choice([e for e in OCC_EMOTIONS if e not in taken]))
        out.append(EmotionRange(emotion=emotion, max=_unit(rng, *CAP_RANGE)))
        taken.add(emotion)
    if rng.random() < CHRONIC_P:
        emotions, (lo, hi) = CHRONIC
        emotion = str(rng.choice([e for e in emotions if e not in taken]))
        out.append(EmotionRange(emotion=emotion, min=_unit(rng, lo, hi)))
    return out


def _volatility(rng: np.random.Generator, neuroticism: float) -> list[Volatility]:
    out = []
    if rng.random() < VOLATILITY_P:
        step = min(0.95, 0.5 + 0.3 * neuroticism + rng.uniform(0, 0.15))
        out.append(Volatility(max_step=round(float(step), 2)))
    if rng.random() < EMOTION_VOLATILITY_P:
        out.append(Volatility(emotion=str(rng.choice(OCC_EMOTIONS)), max_step=_unit(rng, 0.5, 0.95)))
    return out


def _mood(rng: np.random.Generator, personality: Personality) -> tuple[Mood | None, MoodDynamics | None]:
    """Usually left to Mehrabian's default and affect.mood_dynamics; sometimes written out, as writers do."""
    mood = dynamics = None
    if rng.random() < MOOD_P:
        centre = np.array(default_mood(personality)) + MOOD_SD * rng.standard_normal(3)
        mood = Mood(**dict(zip(PAD, np.clip(centre, -1, 1).round(2).tolist(), strict=True)))
    if rng.random() < DYNAMICS_P:
        dynamics = MoodDynamics(pull=_unit(rng, 0.15, 0.5), band=_unit(rng, 0.1, 0.35))
    return mood, dynamics


def random_character(rng: np.random.Generator, character_id: str, culture: Culture | None) -> Character:
    personality = random_personality(rng)
    mood, dynamics = _mood(rng, personality)
    inherited = culture.display_rules if culture is not None else []
    own = _display_rules(rng, PERSONAL_RULES, personality.model_dump(), inherited)
    return Character(id=character_id, name=f"Character {character_id}",
                     culture=culture.id if culture else None, personality=personality, mood=mood,
                     mood_dynamics=dynamics, ranges=_ranges(rng),
                     volatility=_volatility(rng, personality.neuroticism), display_rules=own)


# Relations. Liking is reciprocated (Kenny & La Voie 1984, Adv. Exp. Soc. Psych. 18: dyadic
# reciprocity of liking): a shared bond plus a personal part. Dominance is complementary (Tiedens &
# Fragale 2003, JPSP 84(3)): one leads, the other defers; extraverts lead more often. Trust follows
# liking. Spreads are ours.
BOND_MEAN, BOND_SD, PERSONAL_SD = 0.15, 0.35, 0.2
DOMINANCE_SD, DOMINANCE_PER_EXTRAVERSION, TRUST_PER_LIKING, TRUST_SD = 0.35, 0.3, 0.6, 0.2
RELATION_LIMIT = 0.95


def _relations(rng: np.random.Generator, characters: list[Character], p: float) -> list[list[Relation]]:
    """For each character, its written relations toward the others (each ordered pair with probability p)."""
    out: list[list[Relation]] = [[] for _ in characters]
    for i, a in enumerate(characters):
        for j in range(i + 1, len(characters)):
            b = characters[j]
            bond = BOND_MEAN + BOND_SD * rng.standard_normal()
            lead = DOMINANCE_SD * rng.standard_normal() + DOMINANCE_PER_EXTRAVERSION * (
                a.personality.extraversion - b.personality.extraversion)
            for k, other, sign in ((i, b, 1.0), (j, a, -1.0)):
                liking = bond + PERSONAL_SD * rng.standard_normal()
                trust = TRUST_PER_LIKING * liking + TRUST_SD * rng.standard_normal()
                dominance = sign * lead + 0.1 * rng.standard_normal()
                values = np.clip([liking, dominance, trust], -RELATION_LIMIT, RELATION_LIMIT).round(2)
                if rng.random() < p:
                    out[k].append(Relation(to=other.id, **dict(zip(STANCE, values.tolist(), strict=True))))
    return out


def random_cast(rng: np.random.Generator, config: SimulatorConfig = DEFAULT_CONFIG) -> Cast:
    """2-6 characters (occasionally up to 8) with cultures and relations; ids c1, c2, … in cast order."""
    if rng.random() < config.large_cast_p:
        size = int(rng.integers(len(config.cast_weights) + 2, config.max_characters + 1))
    else:
        weights = np.array(config.cast_weights)
        size = 2 + int(rng.choice(len(weights), p=weights / weights.sum()))
    cultures = [random_culture(rng, "k1")]
    if rng.random() < config.second_culture_p:
        cultures.append(random_culture(rng, "k2"))
    characters = []
    for k in range(size):
        culture = None if rng.random() < config.no_culture_p else cultures[int(rng.integers(len(cultures)))]
        characters.append(random_character(rng, f"c{k + 1}", culture))
    relations = _relations(rng, characters, config.relation_p)
    characters = [c.model_copy(update={"relations": r}) for c, r in zip(characters, relations, strict=True)]
    return Cast(characters={c.id: c for c in characters}, cultures={c.id: c for c in cultures})


# --- situations -----------------------------------------------------------------------------------------

# Events (ours, shaped by OCC's variables): most drama is someone doing something to someone; harmful
# acts are usually blameworthy; bystanders share a little of the target's fortune; happenings without
# an agent (a storm, news) tend to hit everyone the same way; prospects have likelihood < 1.
AGENT_EVENT_P, TARGET_P, HARMFUL_P, BLAME_MATCHES_HARM_P = 0.6, 0.8, 0.55, 0.8
ACT_PROSPECTIVE_P, HAPPENING_PROSPECTIVE_P = 0.25, 0.5  # a threat vs. a storm that may or may not break
SELF_JUDGEMENT_P, BYSTANDER_P, SHARED_FATE_P, AFFECTED_P = 0.7, 0.5, 0.75, 0.8


def _sign(rng: np.random.Generator, negative_p: float) -> float:
    return -1.0 if rng.random() < negative_p else 1.0


def _agent_event(rng: np.random.Generator, event_id: str, beat: int, ids: list[str]) -> Event:
    agent = str(rng.choice(ids))
    others = [c for c in ids if c != agent]
    target = str(rng.choice(others)) if rng.random() < TARGET_P else None
    prospective = rng.random() < ACT_PROSPECTIVE_P
    likelihood = _unit(rng, 0.3, 0.9) if prospective else 1.0
    harm = _sign(rng, HARMFUL_P)
    praise = harm * (1.0 if rng.random() < BLAME_MATCHES_HARM_P else -1.0) * _unit(rng, 0.2, 1.0)
    own = _unit(rng, -0.3, 0.6) if harm < 0 else _unit(rng, -0.2, 0.8)
    self_praise = round(praise * _unit(rng, 0.3, 1.0), 2) if rng.random() < SELF_JUDGEMENT_P else None
    appraisals = [Appraisal(character=agent, desirability=own, praiseworthiness=self_praise,
                            likelihood=likelihood)]
    if target is not None:
        appraisals.append(Appraisal(character=target, desirability=harm * _unit(rng, 0.3, 1.0),
                                    praiseworthiness=praise, likelihood=likelihood))
    for c in others:
        if c != target and rng.random() < BYSTANDER_P:
            appraisals.append(Appraisal(character=c, desirability=round(harm * _unit(rng, 0.0, 0.5), 2),
                                        praiseworthiness=round(praise * _unit(rng, 0.3, 1.0), 2),
                                        likelihood=likelihood))
    return Event(id=event_id, beat=beat, agent=agent, target=target,
                 status="prospective" if prospective else "actual", appraisals=appraisals)


def _happening(rng: np.random.Generator, event_id: str, beat: int, ids: list[str]) -> Event:
    prospective = rng.random() < HAPPENING_PROSPECTIVE_P
    likelihood = _unit(rng, 0.3, 0.9) if prospective else 1.0
    shared = _sign(rng, HARMFUL_P)
    affected = [c for c in ids if rng.random() < AFFECTED_P] or [str(rng.choice(ids))]
    sign = [shared if rng.random() < SHARED_FATE_P else -shared for _ in affected]
    appraisals = [Appraisal(character=c, desirability=s * _unit(rng, 0.2, 1.0), likelihood=likelihood)
                  for c, s in zip(affected, sign, strict=True)]
    return Event(id=event_id, beat=beat, status="prospective" if prospective else "actual",
                 appraisals=appraisals)


def random_situation(rng: np.random.Generator, ids: list[str], config: SimulatorConfig = DEFAULT_CONFIG,
                     situation_id: str = "simulated") -> Situation:
    """6-24 beats, a publicness, and 1-4 appraised events at random beats (no pins: see `random_pins`)."""
    beats = int(rng.integers(config.min_beats, config.max_beats + 1))
    n_events = int(rng.integers(1, config.max_events + 1))
    events = []
    for k in range(n_events):
        make = _agent_event if rng.random() < AGENT_EVENT_P else _happening
        events.append(make(rng, f"e{k + 1}", int(rng.integers(1, beats + 1)), ids))
    return Situation(id=situation_id, publicness=round(float(rng.uniform()), 2), cast=list(ids), beats=beats,
                     events=sorted(events, key=lambda e: e.beat))


PIN_MARGIN = (0.0, 0.1)


def random_pins(rng: np.random.Generator, situation: Situation, x: torch.Tensor, p: float) -> list[Pin]:
    """With probability p, one or two keyframes on the simulated felt/shown/mood values, as an author
    would pin where the scene should arrive; taken loose around the trajectory so it satisfies them."""
    if rng.random() >= p:
        return []
    layout = layout_for(situation)
    names = [n for n in layout.names if ".stance." not in n]
    pins = []
    for name in rng.choice(names, size=int(rng.integers(1, 3)), replace=False):
        value = float(x.reshape(-1)[layout.positions[layout.index(str(name))]])
        margin = float(rng.uniform(*PIN_MARGIN))
        floor = 0.0 if (".felt." in name or ".shown." in name) else -1.0
        if rng.random() < 0.5:
            pins.append(Pin(var=str(name), min=max(floor, np.floor((value - margin) * 1000) / 1000)))
        else:
            pins.append(Pin(var=str(name), max=min(1.0, np.ceil((value + margin) * 1000) / 1000)))
    return pins


# --- dynamics -------------------------------------------------------------------------------------------

# Emotion decay: exponential toward 0 with a half-life in beats (ours: 2), scaled per emotion and
# person. Verduyn & Lavrijsen (2015), Motivation & Emotion 39, 119-127: sadness lasts longest, guilt
# outlasts shame; shame, fear and relief are among the shortest. Verduyn & Brans (2012), Pers.
# Individ. Differ. 52(6): neuroticism lengthens negative emotions, extraversion positive ones.
HALF_LIFE = 2.0
DURATION = {"distress": 2.0, "remorse": 1.6, "disappointment": 1.3, "hate": 1.5,
            "shame": 0.6, "fear": 0.7, "relief": 0.6}
DURATION_PER_TRAIT = 0.8  # half-life × (0.6 + 0.8·N) for negative, × (0.6 + 0.8·E) for positive emotions
# Reactivity: Larsen & Ketelaar (1991), JPSP 61(1): neuroticism amplifies reactions to negative
# events, extraversion to positive ones. An appraisal's bound is multiplied by 1 + REACTIVITY·trait
# (≥ 1, so the compiled event bound still holds).
REACTIVITY = 0.6
# Fortunes of others (OCC ch. 5): happy-for/pity toward a liked person's good/bad fortune, resentment/
# gloating toward a disliked one's, in proportion to |liking|; empathy grows with agreeableness
# (Graziano, Habashi, Sheese & Tobin 2007, JPSP 93(4)). Below FORTUNES_MIN_LIKING nobody cares.
FORTUNES_MIN_LIKING = 0.1
# Prospect confirmation (OCC ch. 6): an actual event landing on someone who hopes or fears resolves the
# prospect: satisfaction or disappointment from hope, relief or fears-confirmed from fear, in
# proportion to the prospect's intensity and the outcome's |desirability|; the prospect then halves.
# Situations do not link outcomes to prospects, so any actual event counts (ours).
PROSPECT_RESOLVED = 0.5
# ALMA mood (Gebhard 2005, §3.3): mood is pulled toward the intensity-weighted PAD centre of the
# active emotions, with a strength that grows with total activation, and drifts back to the default
# mood. MOOD_RETURN per beat and ACTIVE are ours. The result is then held inside the compiled linear
# band (constraints/mood.py), which is ALMA's pull made linear.
MOOD_RETURN, ACTIVE = 0.1, 0.05
# Stance: an AR(1) around an anchor that starts at the written relation and moves with events
# (ours). An agent's praiseworthy act raises the appraiser's liking and trust toward it, a
# blameworthy one lowers them; trust falls faster than it rises (Slovic 1993, Risk Analysis 13(6),
# the asymmetry principle). What the agent's act does to one's own fortune moves liking too.
STANCE_INERTIA = 0.6
LIKING_PER_PRAISE, LIKING_PER_DESIRABILITY, TRUST_GAIN, TRUST_LOSS = 0.3, 0.15, 0.2, 0.5
STANCE_START_SD = 0.05
# Scenes open in medias res: with this probability a character walks in already feeling one emotion,
# drawn uniformly, at an intensity in CARRIED_IN (ours).
CARRIED_IN_P, CARRIED_IN = 0.4, (0.1, 0.5)
# Noise: a felt emotion wobbles in proportion to its intensity (more for neurotic people: Kuppens et
# al. 2007), plus a small floor so that quiet emotions flicker rather than sit at exactly 0; faces,
# moods and stances jitter a little. Sizes are ours.
FELT_NOISE, FELT_NOISE_PER_N, FELT_FLOOR_NOISE = 0.05, 0.15, 0.01
SHOWN_NOISE, MOOD_NOISE, STANCE_NOISE = 0.02, 0.03, 0.03
INTENSIFY_GAIN = 1.25  # an intensified display: a quarter more than is felt (ours)

PROSPECT = {"hope": ("satisfaction", "disappointment"), "fear": ("relief", "fears-confirmed")}


@dataclass
class Draws:
    """Every random draw of one trajectory, made up front so that adding an event changes the
    dynamics but not the noise: same seed, same scene apart from the event's effect."""

    felt: np.ndarray      # [T, C, E]
    floor: np.ndarray     # [T, C, E]
    shown: np.ndarray     # [C, T, E]
    mood: np.ndarray      # [T, C, 3]
    stance: np.ndarray    # [T, C, C, 3]
    scale: np.ndarray     # [C] per-character felt noise level
    opening: np.ndarray   # [C, E] what each character feels as the scene opens

    @staticmethod
    def draw(rng: np.random.Generator, characters: int, beats: int) -> Draws:
        C, T = characters, beats
        return Draws(felt=rng.standard_normal((T, C, E)), floor=rng.standard_normal((T, C, E)),
                     shown=rng.standard_normal((C, T, E)), mood=rng.standard_normal((T, C, 3)),
                     stance=rng.standard_normal((T, C, C, 3)), scale=rng.uniform(0.5, 1.5, C),
                     opening=Draws._opening(rng, C))

    @staticmethod
    def _opening(rng: np.random.Generator, characters: int) -> np.ndarray:
        carried = rng.random(characters) < CARRIED_IN_P
        emotion, level = rng.integers(E, size=characters), rng.uniform(*CARRIED_IN, size=characters)
        opening = np.zeros((characters, E))
        opening[np.arange(characters), emotion] = np.where(carried, level, 0.0)
        return opening


@dataclass
class Person:
    """Per-character dynamics as arrays over the cast: what the constraint rows and traits imply."""

    decay: np.ndarray       # [C, E] per-beat retention
    gain: np.ndarray        # [C, E] reactivity
    agreeableness: np.ndarray  # [C]
    lower: np.ndarray       # [C, E] felt range
    upper: np.ndarray
    step: np.ndarray        # [C, E] volatility (inf: none written)
    pull: np.ndarray        # [C] ALMA k
    band: np.ndarray        # [C] δ
    scale: np.ndarray       # [C] linear centre divisor S
    baseline: np.ndarray    # [C, 3]
    noise: np.ndarray       # [C] relative felt noise σ

    @staticmethod
    def of(characters: list[Character], noise_scale: np.ndarray) -> Person:
        C = len(characters)
        n = np.array([c.personality.neuroticism for c in characters])
        x = np.array([c.personality.extraversion for c in characters])
        duration = np.array([DURATION.get(e, 1.0) for e in OCC_EMOTIONS])
        trait = np.where(NEGATIVE[None, :], n[:, None], x[:, None])
        half_life = HALF_LIFE * duration[None, :] * (0.6 + DURATION_PER_TRAIT * trait)
        lower, upper, step = np.zeros((C, E)), np.ones((C, E)), np.full((C, E), np.inf)
        for k, c in enumerate(characters):
            for r in c.ranges:
                lower[k, EMOTION[r.emotion]], upper[k, EMOTION[r.emotion]] = r.min, r.upper
            general = next((v for v in reversed(c.volatility) if v.emotion is None), None)
            if general is not None:
                step[k] = general.max_step
            for v in c.volatility:
                if v.emotion is not None:
                    step[k, EMOTION[v.emotion]] = v.max_step
        dynamics = [mood_dynamics(c) for c in characters]
        return Person(
            decay=0.5 ** (1.0 / half_life), gain=1.0 + REACTIVITY * trait,
            agreeableness=np.array([c.personality.agreeableness for c in characters]),
            lower=lower, upper=np.maximum(upper, lower), step=step,
            pull=np.array([d.pull for d in dynamics]), band=np.array([d.band for d in dynamics]),
            scale=np.array([pull_scale(d) for d in dynamics]),
            baseline=np.clip(np.array([baseline(c)[0] for c in characters]), -1, 1),
            noise=(FELT_NOISE + FELT_NOISE_PER_N * n) * noise_scale,
        )


def _written_relations(cast: Cast, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`static_stance` [C, C, 3] (0 where neither wrote a relation) and where it is written [C, C]."""
    C = len(ids)
    rel, written = np.zeros((C, C, len(STANCE))), np.zeros((C, C), dtype=bool)
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            stance = static_stance(cast, a, b) if i != j else None
            if stance is not None:
                rel[i, j], written[i, j] = stance, cast[a].relation_to(b) is not None
    return rel, written


class Trajectory:
    """One scene's felt, mood and stance, beat by beat; `shown` is derived at the end."""

    def __init__(self, cast: Cast, situation: Situation, draws: Draws):
        self.cast, self.situation, self.draws = cast, situation, draws
        self.ids = list(situation.cast)
        self.characters = [cast[c] for c in self.ids]
        C, T = len(self.ids), situation.beats
        self.person = Person.of(self.characters, draws.scale)
        self.relation, written = _written_relations(cast, self.ids)
        self.band_lo = np.where(written[..., None], self.relation - STANCE_BAND, -1.0).clip(-1, 1)
        self.band_hi = np.where(written[..., None], self.relation + STANCE_BAND, 1.0).clip(-1, 1)
        self.anchor = self.relation.copy()
        self.felt = np.zeros((T, C, E))
        self.mood = np.zeros((T, C, 3))
        self.stance = np.zeros((T, C, C, 3))
        self.appraisals: list[list[tuple[Event, Appraisal]]] = [[] for _ in range(T)]
        for event in situation.events:
            for ap in event.appraisals:
                self.appraisals[event.beat - 1].append((event, ap))

    def run(self) -> None:
        for b in range(self.situation.beats):
            self._stance(b)
            self._felt(b)
            self._mood(b)

    # stance --------------------------------------------------------------------------------------------
    def _stance(self, b: int) -> None:
        for event, ap in self.appraisals[b]:
            if event.agent is None or event.agent == ap.character or event.status != "actual":
                continue
            i, a = self.ids.index(ap.character), self.ids.index(event.agent)
            praise = ap.praiseworthiness or 0.0
            liking = LIKING_PER_PRAISE * praise + LIKING_PER_DESIRABILITY * ap.desirability
            self.anchor[i, a, LIKING] += liking
            self.anchor[i, a, TRUST] += (TRUST_LOSS if praise < 0 else TRUST_GAIN) * praise
        self.anchor = self.anchor.clip(self.band_lo, self.band_hi)
        if b == 0:
            s = self.relation + STANCE_START_SD * self.draws.stance[0]
        else:
            prev = self.stance[b - 1]
            s = self.anchor + STANCE_INERTIA * (prev - self.anchor) + STANCE_NOISE * self.draws.stance[b]
            s = s.clip(prev - STANCE_STEP, prev + STANCE_STEP)
        self.stance[b] = s.clip(self.band_lo, self.band_hi)

    # felt ----------------------------------------------------------------------------------------------
    def _felt(self, b: int) -> None:
        p = self.person
        prev = self.felt[b - 1] if b else self.draws.opening.clip(p.lower, p.upper)
        decayed = (prev * p.decay * (1.0 + p.noise[:, None] * self.draws.felt[b])
                   + FELT_FLOOR_NOISE * self.draws.floor[b]).clip(0, 1)
        target = np.zeros_like(decayed)
        liking = self.stance[b - 1, ..., LIKING] if b else self.relation[..., LIKING]
        for event, ap in self.appraisals[b]:
            c = self.ids.index(ap.character)
            raised = appraised_emotions(ap, event.status, event.agent == ap.character,
                                        has_agent=event.agent is not None)
            for emotion, bound in raised.items():
                k = EMOTION[_felt_member(emotion, bound, p.upper[c])]
                target[c, k] = max(target[c, k], min(1.0, bound * p.gain[c, k]))
            if event.status == "actual" and ap.desirability:
                self._confirm(target, decayed, prev, c, ap)
                self._fortunes(target, liking, c, ap)
        felt = 1.0 - (1.0 - decayed) * (1.0 - target)  # a new emotion adds to what lingers, saturating at 1
        lo, hi = p.lower, p.upper
        if b:
            lo, hi = np.maximum(lo, prev - p.step), np.minimum(hi, prev + p.step)
        self.felt[b] = felt.clip(lo, np.maximum(lo, hi))

    def _confirm(self, target: np.ndarray, decayed: np.ndarray, prev: np.ndarray, c: int,
                 ap: Appraisal) -> None:
        d = ap.desirability
        for prospect, (good, bad) in PROSPECT.items():
            level = prev[c, EMOTION[prospect]]
            k = EMOTION[good if d > 0 else bad]
            target[c, k] = max(target[c, k], min(1.0, level * abs(d) * ap.likelihood))
            decayed[c, EMOTION[prospect]] *= PROSPECT_RESOLVED

    def _fortunes(self, target: np.ndarray, liking: np.ndarray, c: int, ap: Appraisal) -> None:
        d = ap.desirability
        for i in range(len(self.ids)):
            like = liking[i, c]
            if i == c or abs(like) < FORTUNES_MIN_LIKING:
                continue
            if like > 0:
                emotion, empathy = ("happy-for" if d > 0 else "pity"), 0.5 + self.person.agreeableness[i]
            else:
                emotion, empathy = ("resentment" if d > 0 else "gloating"), 1.5 - self.person.agreeableness[i]
            k = EMOTION[emotion]
            level = EVENT_GAIN * abs(d) * ap.likelihood * abs(like) * empathy
            target[i, k] = max(target[i, k], min(1.0, level))

    # mood ----------------------------------------------------------------------------------------------
    def _mood(self, b: int) -> None:
        p, felt = self.person, self.felt[b]
        prev = self.mood[b - 1] if b else p.baseline
        total = felt.sum(axis=1, keepdims=True)
        centre = felt @ PAD_MATRIX / np.maximum(total, 1e-9)
        strength = np.where(total > ACTIVE, np.minimum(total, 1.0), 0.0)
        k = p.pull[:, None]
        alma = prev + k * strength * (centre - prev) + MOOD_RETURN * (p.baseline - prev) \
            + MOOD_NOISE * self.draws.mood[b]
        linear = (1 - k) * prev + k * (felt @ PAD_MATRIX) / p.scale[:, None]
        band = p.band[:, None]
        self.mood[b] = alma.clip(linear - band, linear + band).clip(-1, 1)

    # shown ---------------------------------------------------------------------------------------------
    def shown(self) -> np.ndarray:
        """[C, T, E]: felt plus a little noise, then each display rule the scene's audiences call for
        (Ekman & Friesen 1969), lowering rules first so a mask's shown emotion is not undone."""
        felt = self.felt.transpose(1, 0, 2)
        shown = (felt + SHOWN_NOISE * self.draws.shown).clip(0, 1)
        context = SceneContext(self.cast, self.situation, layout_for(self.situation))
        for c, cid in enumerate(self.ids):
            audiences = audiences_for(cid, self.situation, self.cast)
            rules = [r for _, r in rules_for(context, cid) if r.audience in audiences]
            for rule in sorted(rules, key=lambda r: r.kind not in LOWERING):
                _display(shown[c], felt[c], rule)
        return shown

    def tensor(self, features: int) -> torch.Tensor:
        """The state as `[C, T, features]` in StateLayout's feature order; absent stance slots stay 0."""
        C, T = len(self.ids), self.situation.beats
        x = np.zeros((C, T, features))
        x[..., FELT] = self.felt.transpose(1, 0, 2)
        x[..., SHOWN] = self.shown()
        x[..., MOOD] = self.mood.transpose(1, 0, 2)
        stance = self.stance.transpose(1, 0, 2, 3).copy()  # [C, T, C, 3]
        for i in range(C):
            stance[i, :, i] = 0.0  # the self slot is masked
        x[..., STANCE_START:STANCE_START + 3 * C] = stance.reshape(C, T, 3 * C)
        return torch.from_numpy(x)


def _felt_member(emotion: str, bound: float, upper: np.ndarray) -> str:
    """The emotion that carries an appraisal: itself, or where the character's range caps it below the
    bound, the first member of its OCC family that can (one who never feels shame feels remorse)."""
    family = EMOTION_FAMILY.get(emotion, (emotion,))
    return next((e for e in (emotion, *family) if upper[EMOTION[e]] >= bound), emotion)


def _display(shown: np.ndarray, felt: np.ndarray, rule: DisplayRule) -> None:
    """Apply one rule in place to one character's [T, E] shown values, meeting its compiled row."""
    k, value = EMOTION[rule.emotion], display_value(rule)
    if rule.kind in ("max", "neutralise"):
        shown[:, k] = np.minimum(shown[:, k], value)
    elif rule.kind == "de-intensify":
        shown[:, k] = np.minimum(shown[:, k], value * felt[:, k])
    elif rule.kind == "mask":
        shown[:, k] = np.minimum(shown[:, k], NEUTRALISE_EPSILON)
        if rule.show:
            s = EMOTION[rule.show]
            shown[:, s] = np.maximum(shown[:, s], value * felt[:, k])
    elif rule.kind == "intensify":
        shown[:, k] = np.maximum(shown[:, k], np.minimum(1.0, INTENSIFY_GAIN * felt[:, k]))
    elif rule.kind == "simulate":
        shown[:, k] = np.maximum(shown[:, k], value)


def simulate(cast: Cast, situation: Situation, rng: np.random.Generator,
             features: int = n_features()) -> torch.Tensor:
    """The literature's trajectory for a cast in a situation, `[C, T, features]` float64, unprojected."""
    trajectory = Trajectory(cast, situation, Draws.draw(rng, len(situation.cast), situation.beats))
    trajectory.run()
    return trajectory.tensor(features)


# DESIGN §4's tolerance. Scenes are stored as float32: `project` aims at tol/4 in float64 so that the
# rounding keeps every row within tol, and an unprojected trajectory is accepted on the same margin.
PROJECTION_TOL = 1e-6


class InfeasibleScene(ValueError):
    """A simulated scene that cannot be brought into its constraint set: the generator drew rules that
    contradict each other, which it is built never to do, so this is a bug to report, not to skip."""


def feasible(cast: Cast, situation: Situation, x: torch.Tensor, polytope: Polytope | None = None) -> torch.Tensor:
    """`x` (float32) moved onto the constraint set its cast and situation compile to (`polytope`, compiled
    here if not given), if not already in it.

    Training data must be feasible: the sampler projects onto this set, so a prior that learnt
    infeasible scenes would fight the projection at every step.
    """
    layout = layout_for(situation)
    if polytope is None:
        polytope = compile_constraints(cast, situation, layout=layout)
    y = layout.flatten(x.double().unsqueeze(0))
    if float(polytope.violation(y)) > PROJECTION_TOL / 4:
        try:
            y, _ = project(y, polytope, tol=PROJECTION_TOL)
        except ValueError as e:
            raise InfeasibleScene(f"situation '{situation.id}': {e}") from e
    y = y.float()
    violation = float(polytope.violation(y))
    if violation > PROJECTION_TOL:
        raise InfeasibleScene(f"situation '{situation.id}': its constraint set looks empty (after projection "
                              f"a row is still off by {violation:.2g})")
    return layout.unflatten(y, like=x.float().unsqueeze(0))[0]


@dataclass(frozen=True)
class Generated:
    """A generated scene and the constraint set it was made feasible for (a corpus stores its limits)."""

    cast: Cast
    situation: Situation
    scene: torch.Tensor  # [C, T, F] float32, inside `polytope`
    polytope: Polytope


def generate(rng: np.random.Generator, config: SimulatorConfig = DEFAULT_CONFIG) -> Generated:
    """A random cast, a random situation for it, and its feasible trajectory, with the situation's constraint set."""
    cast = random_cast(rng, config)
    situation = random_situation(rng, cast.ids(), config)
    x = simulate(cast, situation, rng)
    pins = random_pins(rng, situation, x, config.pin_p)
    if pins:
        situation = situation.model_copy(update={"pins": pins})
    polytope = compile_constraints(cast, situation, layout=layout_for(situation))
    return Generated(described(cast, rng), situation, feasible(cast, situation, x, polytope), polytope)


def generate_scene(rng: np.random.Generator,
                   config: SimulatorConfig = DEFAULT_CONFIG) -> tuple[Cast, Situation, torch.Tensor]:
    """A random cast, a random situation for it, and its feasible trajectory `[C, T, F]` (float32)."""
    generated = generate(rng, config)
    return generated.cast, generated.situation, generated.scene


def described(cast: Cast, rng: np.random.Generator) -> Cast:
    """The cast with a written description of each character (`description.describe`).

    Drawn last, from a generator of its own, so the scenes of a seed are the ones they were
    before characters were described.
    """
    words = np.random.default_rng(rng.integers(2**63))
    characters = {cid: c.model_copy(update={"description": describe(words, c)}) for cid, c in cast.characters.items()}
    return cast.model_copy(update={"characters": characters})
