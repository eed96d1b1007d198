"""Random casts: Big Five traits, Hofstede cultures, the display rules both make likely, relations."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..affect import default_mood
from ..models import (
    Cast,
    Character,
    Culture,
    DisplayRule,
    EmotionRange,
    Mood,
    MoodDynamics,
    Personality,
    Relation,
    Volatility,
)
from ..vocab import BIG_FIVE, HOFSTEDE, OCC_EMOTIONS, PAD, STANCE
from .config import DEFAULT_CONFIG, SimulatorConfig, typed_uniform

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
        out.append(EmotionRange(emotion=emotion, max=typed_uniform(rng, *CAP_RANGE)))
        taken.add(emotion)
    if rng.random() < CHRONIC_P:
        emotions, (lo, hi) = CHRONIC
        emotion = str(rng.choice([e for e in emotions if e not in taken]))
        out.append(EmotionRange(emotion=emotion, min=typed_uniform(rng, lo, hi)))
    return out


def _volatility(rng: np.random.Generator, neuroticism: float) -> list[Volatility]:
    out = []
    if rng.random() < VOLATILITY_P:
        step = min(0.95, 0.5 + 0.3 * neuroticism + rng.uniform(0, 0.15))
        out.append(Volatility(max_step=round(float(step), 2)))
    if rng.random() < EMOTION_VOLATILITY_P:
        out.append(Volatility(emotion=str(rng.choice(OCC_EMOTIONS)), max_step=typed_uniform(rng, 0.5, 0.95)))
    return out


def _mood(rng: np.random.Generator, personality: Personality) -> tuple[Mood | None, MoodDynamics | None]:
    """Usually left to Mehrabian's default and affect.mood_dynamics; sometimes written out, as writers do."""
    mood = dynamics = None
    if rng.random() < MOOD_P:
        centre = np.array(default_mood(personality)) + MOOD_SD * rng.standard_normal(3)
        mood = Mood(**dict(zip(PAD, np.clip(centre, -1, 1).round(2).tolist(), strict=True)))
    if rng.random() < DYNAMICS_P:
        dynamics = MoodDynamics(pull=typed_uniform(rng, 0.15, 0.5), band=typed_uniform(rng, 0.1, 0.35))
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
