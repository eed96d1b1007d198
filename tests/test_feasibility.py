"""Infeasible scenes are reported once, with the rows that conflict and the file positions of those files write."""
from __future__ import annotations

import time

import pytest
from conftest import LIBRARY, locate

import storydiff
from storydiff.constraints import compile_constraints
from storydiff.constraints.pins import pin_name
from storydiff.errors import StorydiffError
from storydiff.feasibility import conflicting_rows, describe_row, explain_infeasible, require_feasible
from storydiff.models import (
    Appraisal,
    Cast,
    Character,
    EmotionRange,
    Event,
    Pin,
    Relation,
    Situation,
    Source,
    Volatility,
)


def at(path: str, line: int) -> Source:
    """Where an element is written; indented, as in the example library."""
    return Source(path=path, line=line, column=7)


def pilot(cid: str = "mara", others: tuple[str, ...] = ("ilan",), **changes) -> Character:
    return Character(**{
        "id": cid, "name": cid.title(),
        "ranges": [EmotionRange(emotion="shame", never=True, source=at(f"/lib/{cid}.character.xml", 11))],
        "volatility": [Volatility(max_step=0.35, source=at(f"/lib/{cid}.character.xml", 13))],
        "relations": [Relation(to=o, trust=0.6, source=at(f"/lib/{cid}.character.xml", 17)) for o in others],
        **changes,
    })


def harbour(*pins: Pin, events=(), characters=None, beats: int = 8) -> tuple[Cast, Situation]:
    characters = characters or [pilot(), pilot("ilan", ("mara",))]
    return (Cast(characters={c.id: c for c in characters}),
            Situation(id="s", cast=[c.id for c in characters], beats=beats, pins=list(pins), events=list(events),
                      source=at("/lib/situations/s.situation.xml", 2)))


def test_feasible_scene_has_nothing_to_explain():
    cast, sit = harbour(Pin(var="mara.felt.anger@8", min=0.5))
    assert conflicting_rows(compile_constraints(cast, sit)) is None
    assert explain_infeasible(cast, sit) == []


def test_pin_against_never_is_one_problem_at_the_pin_naming_the_range():
    # One conflict, one problem, from the writer's pin, though the character file takes part too.
    pin = Pin(var="mara.felt.shame@4", min=0.3, source=at("/lib/situations/s.situation.xml", 20))
    cast, sit = harbour(pin)
    assert conflicting_rows(compile_constraints(cast, sit)) == ["mara.range.felt.shame.never@4",
                                                                "pin:mara.felt.shame>=0.3@4"]
    (problem,) = explain_infeasible(cast, sit)
    assert (problem.path, problem.line, problem.column, problem.code) == ("/lib/situations/s.situation.xml", 20, 7,
                                                                          "infeasible")
    assert problem.message == ("pin mara.felt.shame ≥ 0.3 at beat 4 conflicts with "
                               "mara.range.felt.shame.never = 0 at beat 4 (mara.character.xml:11)")


def test_one_line_error_names_the_conflict_once_from_the_situation_file():
    pin = Pin(var="mara.felt.shame@4", min=0.3, source=at("/lib/situations/s.situation.xml", 20))
    cast, sit = harbour(pin)
    with pytest.raises(StorydiffError) as caught:
        require_feasible(cast, sit)
    message = str(caught.value)
    assert message == ("/lib/situations/s.situation.xml:20:7: pin mara.felt.shame ≥ 0.3 at beat 4 conflicts with "
                       "mara.range.felt.shame.never = 0 at beat 4 (mara.character.xml:11)")
    require_feasible(*harbour(Pin(var="mara.felt.anger@8", min=0.5)))


def test_pins_too_far_apart_for_volatility():
    cast, sit = harbour(Pin(var="mara.felt.joy@3", equal=0.0), Pin(var="mara.felt.joy@5", min=0.8))
    assert conflicting_rows(compile_constraints(cast, sit)) == [
        "mara.volatility.felt.joy@3-4", "mara.volatility.felt.joy@4-5", "pin:mara.felt.joy=0@3",
        "pin:mara.felt.joy>=0.8@5"]


def test_event_against_a_character_that_never_feels_its_family():
    numb = pilot(ranges=[EmotionRange(emotion=e, never=True) for e in
                         ("distress", "disappointment", "fears-confirmed", "anger", "remorse")])
    sale = Event(id="sale", beat=3, appraisals=[Appraisal(character="mara", desirability=-0.8,
                                                          source=at("/lib/situations/s.situation.xml", 9))])
    cast, sit = harbour(events=[sale], characters=[numb, pilot("ilan", ("mara",))])
    names = conflicting_rows(compile_constraints(cast, sit))
    assert names == ["mara.range.felt.distress.never@3", "mara.range.felt.disappointment.never@3",
                     "mara.range.felt.fears-confirmed.never@3", "mara.range.felt.anger.never@3",
                     "mara.range.felt.remorse.never@3", "event:sale.mara.distress-family>=0.4@3"]
    problems = explain_infeasible(cast, sit)
    assert [p.line for p in problems] == [9]  # the never-ranges above carry no source
    assert "event 'sale' raising mara's distress family to ≥ 0.4 at beat 3" in problems[0].message


def test_carried_stance_outside_the_relation_band():
    cast, sit = harbour()
    problems = explain_infeasible(cast, sit, previous={"mara.stance.ilan.trust": -0.9})
    assert conflicting_rows(compile_constraints(cast, sit, {"mara.stance.ilan.trust": -0.9})) == [
        "mara.relation.ilan.trust@1", "continuity:mara.stance.ilan.trust@1"]
    assert [(p.path, p.line) for p in problems] == [("/lib/mara.character.xml", 17)]
    assert "continuity:mara.stance.ilan.trust in [-1.1, -0.7] at beat 1" in problems[0].message


def test_conflict_without_file_positions_is_reported_at_the_situation():
    cast, sit = harbour(Pin(var="ilan.felt.joy@2", min=1.5))
    problems = explain_infeasible(cast, sit)
    assert [(p.path, p.line) for p in problems] == [("/lib/situations/s.situation.xml", 2)]
    assert problems[0].message == ("these cannot all hold: ilan.felt.joy in [0, 1] (its natural range) at beat 2; "
                                   "pin ilan.felt.joy ≥ 1.5 at beat 2 (your pin)")


def _storm_line(needle: str) -> int:
    return locate((LIBRARY / "situations" / "storm.situation.xml").read_text(encoding="utf-8"), needle)[0]


@pytest.mark.parametrize("pin,blamed", [
    (Pin(var="mara.felt.shame@2", min=0.6),
     lambda: "mara.range.felt.shame.never = 0 at beat 2 (mara.character.xml:{})".format(
         locate((LIBRARY / "mara.character.xml").read_text(encoding="utf-8"), '<range emotion="shame"')[0])),
    (Pin(var="mara.felt.anger@8", max=0.2),
     lambda: f"pin mara.felt.anger ≥ 0.5 at beat 8 (storm.situation.xml:{_storm_line('mara.felt.anger@8')})"),
    (Pin(var="ilan.felt.joy@2", min=1.5), lambda: "ilan.felt.joy in [0, 1] (its natural range) at beat 2"),
], ids=["against-a-range", "against-a-file-pin", "against-the-box"])
def test_pins_passed_to_sample_are_named_as_the_callers_not_placed_in_a_file(engine, pin, blamed):
    storm = storydiff.load_situation(LIBRARY / "situations" / "storm.situation.xml",
                                     storydiff.load_characters(LIBRARY))
    with pytest.raises(StorydiffError) as caught:
        engine.sample(storm, pins=[pin])
    own = describe_row(pin_name(pin), *pin.bounds)
    assert str(caught.value) == f"{own} (your pin) conflicts with {blamed()}"


def test_a_large_infeasible_scene_is_explained_in_seconds():
    ids = [f"c{i}" for i in range(8)]
    people = [pilot(c, tuple(o for o in ids if o != c)) for c in ids]
    events = [Event(id=f"e{b}", beat=b, appraisals=[Appraisal(character=c, desirability=-0.5) for c in ids])
              for b in range(2, 24, 3)]
    cast, sit = harbour(Pin(var="c3.felt.anger@23", max=0.0), Pin(var="c3.felt.anger@24", min=0.5),
                        events=events, characters=people, beats=24)
    start = time.perf_counter()
    names = conflicting_rows(compile_constraints(cast, sit))
    assert time.perf_counter() - start < 5
    assert names == ["c3.volatility.felt.anger@23-24", "pin:c3.felt.anger<=0@23", "pin:c3.felt.anger>=0.5@24"]


@pytest.mark.parametrize("name,lower,upper,text", [
    ("pin:mara.felt.anger>=0.8@5", 0.8, float("inf"), "pin mara.felt.anger ≥ 0.8 at beat 5"),
    ("mara.range.felt.anger.max@5", -float("inf"), 0.6, "mara.range.felt.anger.max = 0.6 at beat 5"),
    ("mara.volatility.felt.joy@4-5", -0.35, 0.35,
     "mara.volatility.felt.joy (a change of at most 0.35) between beats 4 and 5"),
    ("mara.mood-pull.pleasure@2", -0.25, 0.25, "mara.mood-pull.pleasure in [-0.25, 0.25] at beat 2"),
    ("culture:harbor-folk.ilan.display.fear.public@2", -float("inf"), 0.0,
     "the harbor-folk display rule for ilan on fear in public at beat 2"),
    ("mara.display.distress.superior.show@3", 0.0, float("inf"),
     "mara's display rule on distress before a superior (the emotion shown instead) at beat 3"),
])
def test_rows_in_words(name, lower, upper, text):
    assert describe_row(name, lower, upper) == text
