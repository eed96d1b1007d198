"""A cast's affect trajectory through a situation: OCC appraisal, decay, ALMA mood, stance, display."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..affect import (
    EMOTION_FAMILY,
    EMOTION_PAD,
    EVENT_GAIN,
    NEUTRALISE_EPSILON,
    STANCE_BAND,
    STANCE_STEP,
    appraised_emotions,
    audiences_for,
    baseline,
    display_value,
    mood_dynamics,
    pull_scale,
    static_stance,
)
from ..constraints.display import rules_for
from ..constraints.rows import SceneContext
from ..layout import FELT, MOOD, SHOWN, STANCE_START, n_features
from ..models import Appraisal, Cast, Character, DisplayRule, Event, Situation
from ..vocab import OCC_EMOTIONS, STANCE
from .casts import LOWERING
from .config import layout_for

E = len(OCC_EMOTIONS)
EMOTION = {e: k for k, e in enumerate(OCC_EMOTIONS)}
PAD_MATRIX = np.array([EMOTION_PAD[e] for e in OCC_EMOTIONS])  # [22, 3], ALMA (Gebhard 2005)
NEGATIVE = PAD_MATRIX[:, 0] < 0  # valence from ALMA's pleasure coordinate
LIKING, TRUST = STANCE.index("liking"), STANCE.index("trust")


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
