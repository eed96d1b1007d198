"""Each rule family does what the psychology says, checked against exact LP/QP references (HiGHS, OSQP)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import osqp
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from storydiff.affect import EMOTION_FAMILY
from storydiff.constraints import carried_state, compile_constraints, row_family
from storydiff.errors import ValidationError
from storydiff.layout import StateLayout
from storydiff.models import (
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
    Source,
    Volatility,
)
from storydiff.polytope import Polytope
from storydiff.vocab import OCC_EMOTIONS

CHARACTERS = Path(__file__).resolve().parents[1] / "characters"


def at(path: str, line: int) -> Source:
    """Where an element is written; indented, as in the example library."""
    return Source(path=path, line=line, column=5)


def mara(**changes) -> Character:
    base = {
        "id": "mara", "name": "Mara Voss", "culture": "harbor-folk", "source": at("mara.character.xml", 2),
        "personality": Personality(openness=0.4, conscientiousness=0.8, extraversion=0.3, agreeableness=0.5,
                                   neuroticism=0.6, source=at("mara.character.xml", 6)),
        "mood": Mood(pleasure=0.1, arousal=-0.1, dominance=0.4, source=at("mara.character.xml", 8)),
        "mood_dynamics": MoodDynamics(pull=0.3, band=0.25, source=at("mara.character.xml", 9)),
        "ranges": [EmotionRange(emotion="anger", max=0.7, source=at("mara.character.xml", 10)),
                EmotionRange(emotion="shame", never=True, source=at("mara.character.xml", 11)),
                EmotionRange(emotion="fear", min=0.05, source=at("mara.character.xml", 12))],
        "volatility": [Volatility(max_step=0.35, source=at("mara.character.xml", 13)),
                    Volatility(emotion="anger", max_step=0.5, source=at("mara.character.xml", 14))],
        "display_rules": [DisplayRule(emotion="fear", audience="public", kind="neutralise", value=0.05),
                       DisplayRule(emotion="distress", audience="superior", kind="mask", value=0.5, show="satisfaction")],
        "relations": [Relation(to="ilan", liking=0.4, dominance=0.2, trust=0.6, source=at("mara.character.xml", 17))],
    }
    return Character(**(base | changes))


def ilan(**changes) -> Character:
    return Character(**{"id": "ilan", "name": "Ilan", "culture": "harbor-folk", **changes})


HARBOR = Culture(id="harbor-folk", name="Harbor folk", display_rules=[
    DisplayRule(emotion="fear", audience="public", kind="de-intensify", value=0.3),
    DisplayRule(emotion="pride", audience="public", kind="max", value=0.4),
    DisplayRule(emotion="joy", audience="intimate", kind="intensify"),
])

STORM_EVENTS = [
    Event(id="sale", beat=3, agent="ilan", target="mara", appraisals=[
        Appraisal(character="mara", desirability=-0.8, praiseworthiness=-0.6, source=at("storm.situation.xml", 13)),
        Appraisal(character="ilan", desirability=-0.3, praiseworthiness=-0.4)]),
    Event(id="wave", beat=5, status="prospective", appraisals=[
        Appraisal(character="mara", desirability=-0.6, likelihood=0.7),
        Appraisal(character="ilan", desirability=-0.7, likelihood=0.7)]),
]
STORM_PINS = [Pin(var="mara.felt.anger@8", min=0.5, source=at("storm.situation.xml", 24)),
              Pin(var="mara.shown.fear@5", max=0.2)]


def scene(*characters: Character, publicness: float = 0.2, beats: int = 8, events=(), pins=()) -> tuple[Cast, Situation]:
    characters = characters or (mara(), ilan())
    cast = Cast(characters={c.id: c for c in characters}, cultures={HARBOR.id: HARBOR})
    return cast, Situation(id="s", cast=[c.id for c in characters], beats=beats, publicness=publicness,
                           events=list(events), pins=list(pins), source=at("s.situation.xml", 2))


def storm() -> tuple[Cast, Situation]:
    return scene(events=STORM_EVENTS, pins=STORM_PINS)


def inequalities(p: Polytope) -> tuple[sp.csr_matrix, np.ndarray]:
    A = p.A
    M = sp.csr_matrix((A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()), shape=p.shape)
    lo, hi = p.lower.numpy(), p.upper.numpy()
    return sp.vstack([M[np.isfinite(hi)], -M[np.isfinite(lo)]]).tocsr(), np.r_[hi[np.isfinite(hi)], -lo[np.isfinite(lo)]]


def extreme(p: Polytope, terms: dict[str, float] | str, maximise: bool = False) -> float:
    """min (or max) of Σ coef·variable over the polytope, exactly (HiGHS)."""
    terms = {terms: 1.0} if isinstance(terms, str) else terms
    c = np.zeros(p.shape[1])
    for name, coef in terms.items():
        c[p.columns.index(name)] = coef
    A_ub, b_ub = inequalities(p)
    res = linprog(-c if maximise else c, A_ub=A_ub, b_ub=b_ub, bounds=(None, None), method="highs")
    assert res.status == 0, res.message
    return -res.fun if maximise else res.fun


def feasible_point(p: Polytope) -> np.ndarray | None:
    A_ub, b_ub = inequalities(p)
    res = linprog(np.zeros(p.shape[1]), A_ub=A_ub, b_ub=b_ub, bounds=(None, None), method="highs")
    return res.x if res.status == 0 else None


def project(p: Polytope, x: dict[str, float]) -> dict[str, float]:
    """Euclidean projection of x (0 where not given) onto the polytope, by OSQP to 1e-9."""
    x0 = np.array([x.get(n, 0.0) for n in p.columns])
    A = p.A
    M = sp.csc_matrix(sp.csr_matrix((A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()),
                                    shape=p.shape))
    solver = osqp.OSQP()
    solver.setup(sp.identity(p.shape[1], format="csc"), -x0, M, p.lower.numpy(), p.upper.numpy(), verbose=False,
                 eps_abs=1e-9, eps_rel=1e-9, polishing=True, max_iter=200000)
    res = solver.solve()
    assert res.info.status == "solved"
    return dict(zip(p.columns, res.x))


def test_names_columns_and_sources():
    cast, sit = storm()
    p = compile_constraints(cast, sit)
    assert p.columns == StateLayout(sit.cast, sit.beats).names
    assert len(set(p.names)) == len(p.names)
    for name in ["box:mara.felt.anger@1", "mara.range.felt.anger.max@3", "mara.range.felt.shame.never@2",
                 "mara.range.felt.fear.min@1", "mara.volatility.felt.joy@4-5", "mara.mood-pull.pleasure@3",
                 "event:sale.mara.distress-family>=0.4@3", "event:sale.mara.reproach-family>=0.3@3",
                 "event:wave.mara.fear-family>=0.21@5", "event:sale.ilan.shame-family>=0.2@3",
                 "mara.relation.ilan.trust@3", "mara.volatility.stance.ilan.trust@3-4",
                 "pin:mara.felt.anger>=0.5@8", "pin:mara.shown.fear<=0.2@5"]:
        assert name in p.names, name
    source = dict(zip(p.names, p.sources))
    assert source["mara.range.felt.anger.max@3"] == "mara.character.xml:10:5"
    assert source["mara.volatility.felt.anger@1-2"] == "mara.character.xml:14:5"
    assert source["event:sale.mara.distress-family>=0.4@3"] == "storm.situation.xml:13:5"
    assert source["pin:mara.felt.anger>=0.5@8"] == "storm.situation.xml:24:5"
    assert source["box:mara.felt.anger@1"] is None
    assert feasible_point(p) is not None


def test_box_bounds():
    cast, sit = scene(ilan(), Character(id="bo", name="Bo"), beats=3)
    p = compile_constraints(cast, sit)
    assert extreme(p, "bo.felt.joy@2") == 0 and extreme(p, "bo.shown.joy@2", maximise=True) == 1
    assert extreme(p, "bo.mood.arousal@3") == -1 and extreme(p, "bo.stance.ilan.trust@1", maximise=True) == 1


def test_never_shame_means_no_shame_and_ranges_bound_felt():
    cast, sit = storm()
    p = compile_constraints(cast, sit)
    for b in range(1, 9):
        assert extreme(p, f"mara.felt.shame@{b}", maximise=True) == pytest.approx(0, abs=1e-9)
        assert extreme(p, f"mara.felt.anger@{b}", maximise=True) == pytest.approx(0.7)
        assert extreme(p, f"mara.felt.fear@{b}") == pytest.approx(0.21 if b == 5 else 0.05)  # the wave at 5
    assert extreme(p, "mara.shown.shame@4", maximise=True) == pytest.approx(1)  # shame may be shown, not felt


def test_volatility_limits_each_step_with_per_emotion_override():
    cast, sit = scene(pins=[Pin(var="mara.felt.joy@4", equal=0.0), Pin(var="mara.felt.anger@4", equal=0.0)])
    p = compile_constraints(cast, sit)
    assert extreme(p, "mara.felt.joy@5", maximise=True) == pytest.approx(0.35)
    assert extreme(p, "mara.felt.joy@3", maximise=True) == pytest.approx(0.35)
    assert extreme(p, "mara.felt.anger@5", maximise=True) == pytest.approx(0.5)
    assert extreme(p, "ilan.felt.joy@5", maximise=True) == pytest.approx(1)  # Ilan writes no volatility


def test_public_scene_caps_shown_fear_at_the_culture_value_unless_the_character_rewrites_it():
    pins = [Pin(var="mara.felt.fear@2", equal=1.0), Pin(var="ilan.felt.fear@2", equal=1.0)]
    p = compile_constraints(*scene(publicness=0.8, pins=pins))
    assert "culture:harbor-folk.ilan.display.fear.public@2" in p.names
    assert "culture:harbor-folk.mara.display.fear.public@2" not in p.names  # Mara's own rule replaces it
    assert extreme(p, "ilan.shown.fear@2", maximise=True) == pytest.approx(0.3)  # de-intensify 0.3·felt
    assert extreme(p, "mara.shown.fear@2", maximise=True) == pytest.approx(0.05)  # neutralise
    assert extreme(p, "ilan.shown.pride@6", maximise=True) == pytest.approx(0.4)  # max
    private = compile_constraints(*scene(publicness=0.2, pins=pins))
    assert not any("display" in n for n in private.names)
    assert extreme(private, "ilan.shown.fear@2", maximise=True) == pytest.approx(1)


def test_mask_hides_the_emotion_and_shows_the_other():
    boss = mara(relations=[Relation(to="ilan", dominance=-0.5)], volatility=[])  # Ilan is Mara's superior
    p = compile_constraints(*scene(boss, ilan()))
    assert "mara.display.distress.superior.hide@2" in p.names and "mara.display.distress.superior.show@2" in p.names
    y = project(p, {"mara.felt.distress@2": 0.8, "mara.shown.distress@2": 0.8, "mara.felt.fear@2": 0.05})
    assert y["mara.shown.distress@2"] <= 0.05 + 1e-6
    assert y["mara.felt.distress@2"] > 0.6
    assert y["mara.shown.satisfaction@2"] >= 0.5 * y["mara.felt.distress@2"] - 1e-6


def test_intensify_and_simulate_raise_what_is_shown():
    close = ilan(relations=[Relation(to="mara", liking=0.7, trust=0.7)],
                 display_rules=[DisplayRule(emotion="gratitude", audience="private", kind="simulate", value=0.4)])
    p = compile_constraints(*scene(mara(), close, pins=[Pin(var="ilan.felt.joy@2", equal=0.6)]))
    assert extreme(p, "ilan.shown.joy@2") == pytest.approx(0.6)  # intimate: intensify
    assert extreme(p, "ilan.shown.gratitude@7") == pytest.approx(0.4)
    assert extreme(p, "mara.shown.joy@2") == 0  # Mara is not intimate with Ilan


def test_mood_band_holds_for_the_strongest_emotions():
    bo = Character(id="bo", name="Bo", mood_dynamics=MoodDynamics(pull=0.9, band=0.01))
    cast, sit = scene(bo, beats=3, pins=[Pin(var=f"bo.felt.{e}@2", equal=1.0) for e in OCC_EMOTIONS])
    assert feasible_point(compile_constraints(cast, sit)) is not None


@pytest.mark.parametrize("emotion,sign", [("distress", -1), ("joy", 1)])
def test_mood_follows_felt_emotion(emotion, sign):
    only = [EmotionRange(emotion=e, never=True) for e in OCC_EMOTIONS if e != emotion]
    bo = Character(id="bo", name="Bo", mood=Mood(pleasure=-0.5 * sign), ranges=only,
                   mood_dynamics=MoodDynamics(pull=0.5, band=0.02))
    pins = [Pin(var=f"bo.felt.{emotion}@{b}", equal=1.0) for b in range(1, 9)]
    p = compile_constraints(*scene(bo, pins=pins))
    low, high = extreme(p, "bo.mood.pleasure@8"), extreme(p, "bo.mood.pleasure@8", maximise=True)
    assert (low > 0) if sign > 0 else (high < 0)


def test_undesirable_actual_event_forces_the_distress_family_up_at_its_beat():
    cast, sit = scene(mara(ranges=[]), ilan(), events=STORM_EVENTS)
    p = compile_constraints(cast, sit)
    family = {f"mara.felt.{e}@3": 1.0 for e in EMOTION_FAMILY["distress"]}
    assert extreme(p, family) == pytest.approx(0.4)
    assert extreme(p, {n.replace("@3", "@2"): 1.0 for n in family}) == pytest.approx(0)
    reproach = {f"mara.felt.{e}@3": 1.0 for e in EMOTION_FAMILY["reproach"]}
    assert extreme(p, reproach) == pytest.approx(0.3)
    assert extreme(p, "mara.felt.fear@5") == pytest.approx(0.21)  # prospective: fear
    assert extreme(p, "mara.felt.fear@4") == 0
    assert extreme(p, "mara.felt.anger@3") == 0  # anger is allowed, not forced


def test_stance_stays_near_the_relation_and_moves_smoothly():
    cast, sit = scene(pins=[Pin(var="mara.stance.ilan.trust@4", equal=0.2)])
    p = compile_constraints(cast, sit)
    assert extreme(p, "mara.stance.ilan.liking@1") == pytest.approx(-0.1)
    assert extreme(p, "mara.stance.ilan.liking@1", maximise=True) == pytest.approx(0.9)
    assert extreme(p, "mara.stance.ilan.trust@5", maximise=True) == pytest.approx(0.4)
    assert extreme(p, "ilan.stance.mara.trust@5") == -1  # Ilan writes no relation


def test_pins_hold():
    cast, sit = storm()
    p = compile_constraints(cast, sit)
    assert extreme(p, "mara.felt.anger@8") == pytest.approx(0.5)
    assert extreme(p, "mara.shown.fear@5", maximise=True) == pytest.approx(0.2)
    p = compile_constraints(*scene(pins=[Pin(var="mara.mood.dominance@2", equal=0.3)]))
    assert "pin:mara.mood.dominance=0.3@2" in p.names
    assert extreme(p, "mara.mood.dominance@2") == extreme(p, "mara.mood.dominance@2", maximise=True) == pytest.approx(0.3)


@pytest.mark.parametrize("pin,event,code", [
    (Pin(var="mara.felt.anger@9", min=0.5), None, "bad-pin"),
    (Pin(var="mara.felt.angst@2", min=0.5), None, "bad-pin"),
    (Pin(var="zed.felt.anger@2", min=0.5), None, "bad-pin"),
    (None, Event(id="late", beat=12), "bad-beat"),
    (None, Event(id="who", beat=2, appraisals=[Appraisal(character="zed")]), "unknown-character"),
])
def test_rules_naming_what_the_scene_lacks_are_reported_at_their_place(pin, event, code):
    cast, sit = scene(pins=[pin] if pin else [], events=[event] if event else [])
    with pytest.raises(ValidationError) as e:
        compile_constraints(cast, sit)
    assert e.value.problems[0].code == code


def test_a_cast_member_without_a_file_and_a_rule_written_twice():
    cast, sit = scene()
    with pytest.raises(ValidationError) as e:
        compile_constraints(cast, sit.model_copy(update={"cast": ["mara", "ilan", "zed"]}))
    assert e.value.problems[0].code == "unknown-character" and e.value.problems[0].line == 2
    p = compile_constraints(*scene(pins=[Pin(var="mara.felt.joy@2", min=0.1), Pin(var="mara.felt.joy@2", min=0.1)]))
    assert "pin:mara.felt.joy>=0.1@2" in p.names and "pin:mara.felt.joy>=0.1#2@2" in p.names


def test_continuity_with_the_previous_scene():
    cast, sit = storm()
    first = compile_constraints(cast, sit)
    y = feasible_point(first)
    previous = carried_state(first.columns, y)
    assert set(previous) == {f"{c}.{layer}" for c in ("mara", "ilan") for layer in
                             ("mood.pleasure", "mood.arousal", "mood.dominance")} | {
        f"{c}.stance.{o}.{s}" for c, o in (("mara", "ilan"), ("ilan", "mara")) for s in ("liking", "dominance", "trust")}
    assert previous["mara.stance.ilan.trust"] == pytest.approx(y[first.columns.index("mara.stance.ilan.trust@8")])
    second = compile_constraints(cast, sit, previous=previous)
    assert feasible_point(second) is not None
    trust = previous["mara.stance.ilan.trust"]
    assert extreme(second, "mara.stance.ilan.trust@1", maximise=True) <= trust + 0.2 + 1e-9
    assert extreme(second, "mara.stance.ilan.trust@1") >= trust - 0.2 - 1e-9
    gloomy = compile_constraints(cast, sit, previous={"mara.mood.pleasure": -0.9})
    assert "continuity:mara.mood.pleasure@1" in gloomy.names and "mara.mood-pull.pleasure@1" not in gloomy.names
    highest = extreme(first, "mara.mood.pleasure@1", maximise=True)
    assert extreme(gloomy, "mara.mood.pleasure@1", maximise=True) == pytest.approx(highest - 0.7 * (0.1 + 0.9))
    # a story's next scene may drop a character: its carry-over is ignored; a typo is not
    assert compile_constraints(cast, sit, previous={"leonor.mood.pleasure": 0.5}).names == first.names
    for typo in ("mara.mood.rage", "mara.mood.pleasure@1", "mara.felt.anger", "mara.stance.ilan"):
        with pytest.raises(ValueError, match="carry-over keys name a mood or a stance"):
            compile_constraints(cast, sit, previous={typo: 0.1})
    with pytest.raises(ValueError, match="not a finite number"):
        compile_constraints(cast, sit, previous={"mara.mood.pleasure": float("nan")})


def test_row_family():
    assert [row_family(n) for n in ("box:mara.felt.anger@1", "pin:mara.felt.anger>=0.5@8", "mara.range.felt.anger.max@3",
                                    "culture:harbor-folk.mara.display.fear.public@2", "scene1/mara.mood-pull.arousal@2",
                                    "event:sale.mara.distress-family>=0.4@3", "continuity:mara.mood.pleasure@1")] == [
        "box", "pin", "range", "culture", "mood-pull", "event", "continuity"]


def test_eight_characters_by_twenty_four_beats_compile_fast():
    ids = [f"c{i}" for i in range(8)]
    people = [mara(id=c, relations=[Relation(to=o, liking=0.3) for o in ids if o != c]) for c in ids]
    events = [Event(id=f"e{b}", beat=b, agent=ids[b % 8],
                    appraisals=[Appraisal(character=c, desirability=-0.5, praiseworthiness=0.4) for c in ids])
              for b in range(2, 24, 3)]
    cast, sit = scene(*people, publicness=0.7, beats=24, events=events)
    start = time.perf_counter()
    p = compile_constraints(cast, sit)
    assert time.perf_counter() - start < 0.5
    assert p.shape[1] == 8 * 24 * (22 + 22 + 3 + 3 * 7)
    assert feasible_point(p) is not None


def _shipped_situations() -> list[Path]:
    return sorted((CHARACTERS / "situations").glob("*.situation.xml"))


@pytest.mark.parametrize("path", _shipped_situations(), ids=lambda p: p.name)
def test_shipped_example_situations_are_feasible(path):
    loader = pytest.importorskip("storydiff.loader")
    cast = loader.load_characters(CHARACTERS)
    situation = loader.load_situation(path, cast)
    assert feasible_point(compile_constraints(cast, situation)) is not None


def test_shipped_story_carries_into_feasible_scenes():
    loader = pytest.importorskip("storydiff.loader")
    cast = loader.load_characters(CHARACTERS)
    story = loader.load_story(CHARACTERS / "stories" / "saltmarsh.story.xml", cast)
    previous = None
    for part, situation in zip(story.scenes, story.situations):
        p = compile_constraints(cast, situation, previous)
        y = feasible_point(p)
        assert y is not None, situation.id
        previous = carried_state(p.columns, y, part.carry)
