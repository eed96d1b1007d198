"""Online agents: constraints at every beat, events that move feelings, save files, and refusals
that change nothing."""
from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from storydiff import Appraisal
from storydiff.agent import Agent
from storydiff.constraints import compile_constraints
from storydiff.errors import StorydiffError
from storydiff.layout import StateLayout
from storydiff.loader import bundled_library, load_characters, load_situation
from storydiff.models import Event, Pin

DISTRESS_FAMILY = ("distress", "disappointment", "fears-confirmed", "anger", "remorse")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def nets():
    """The bundled three-hander (mara, ilan, leonor; 9 beats)."""
    library = bundled_library()
    return load_situation(library / "situations" / "mending-nets.situation.xml", load_characters(library))


def blow(character: str = "mara", desirability: float = -1.0) -> Event:
    appraisal = Appraisal(character=character, desirability=desirability)
    return Event(id="blow", text="The boat is lost.", appraisals=[appraisal])


def played(agent: Agent) -> tuple[list[str], list[float]]:
    """The whole history as (names, values) in the order of a compiled scene of that many beats."""
    layout = StateLayout(agent.cast_ids, agent.beat)
    values = []
    for name in layout.names:
        stem, beat = name.rsplit("@", 1)
        character, layer, rest = stem.split(".", 2)
        cell = agent.history[int(beat) - 1].cell(character)
        values.append(cell.stance[rest.split(".")[0]][rest.split(".")[1]] if layer == "stance"
                      else getattr(cell, layer)[rest])
    return layout.names, values


def test_constraints_hold_at_every_beat_through_open_ended_play(engine, nets):
    agent = engine.agent(nets, seed=3, window=6)
    for _ in range(12):
        agent.next_beat()
    agent.observe(blow())
    agent.pin(Pin(var="ilan.felt.joy@15", max=0.1))
    for _ in range(4):
        agent.next_beat()
    assert agent.beat == 16 and [b.beat for b in agent.history] == list(range(1, 17))
    assert agent.history[12].events == ["blow"]
    # Every rule of the situation, stretched over all the beats played, with the game's event and pin.
    whole = nets.model_copy(update={"beats": 16, "events": [*nets.events, *agent._events],
                                    "pins": [*nets.pins, Pin(var="ilan.felt.joy@15", max=0.1)]})
    polytope = compile_constraints(nets.library, whole)
    names, values = played(agent)
    assert names == polytope.columns
    y = torch.tensor([values], dtype=torch.float64)
    assert float(polytope.violation(y)[0]) < 1e-5  # values are reported to 6 decimals
    assert any(n.startswith("event:blow.mara.distress-family") for n in polytope.names)
    binding = agent.history[12].cell("mara").binding  # the rows that held her at the event's beat
    assert binding and all(b.endswith(("@13", "-13")) for b in binding)


def test_behaviours_follow_the_beat_before_whatever_order_beats_are_read(engine, nets, monkeypatch):
    from storydiff.scene import choose_behaviour

    monkeypatch.setattr("storydiff.scene.REPEAT_PENALTY", 10.0)  # so strong that no behaviour repeats
    in_order, at_the_end, trimmed = (engine.agent(nets, seed=5, window=6, history_limit=limit)
                                     for limit in (None, None, 3))
    for _ in range(10):
        for agent in (in_order, at_the_end, trimmed):
            agent.next_beat()
        assert in_order.state  # a game reading every beat as it comes
    backwards = [at_the_end.readable(p) for p in reversed(at_the_end._history)][::-1]
    expected = in_order.history
    assert [b.model_dump() for b in backwards] == [b.model_dump() for b in expected]
    assert [b.model_dump() for b in trimmed.history] == [b.model_dump() for b in expected[-3:]]
    for before, beat in pairwise(expected):
        for cell in beat.cells:
            previous = before.cell(cell.character).behaviour
            repertoire = nets.library[cell.character].behaviours
            assert len(repertoire) > 1 and cell.behaviour != previous
            assert cell.behaviour == choose_behaviour(repertoire, cell.shown, cell.mood, previous).id


def test_an_undesirable_event_raises_distress_on_the_next_beat(engine, nets):
    calm, hit = engine.agent(nets, seed=7), engine.agent(nets, seed=7)
    for _ in range(10):
        assert calm.next_beat() == hit.next_beat()
    hit.observe(blow("mara", -1.0))
    quiet, struck = calm.next_beat().cell("mara"), hit.next_beat().cell("mara")

    def family(cell):
        return sum(cell.felt[e] for e in DISTRESS_FAMILY)

    assert family(struck) > family(quiet) + 0.3
    assert struck.felt["distress"] > quiet.felt["distress"]


def test_save_and_load_continue_exactly(engine, nets, tmp_path):
    agent = engine.agent(nets, seed=11, window=8, history_limit=10)
    for _ in range(12):
        agent.next_beat()
    agent.observe(blow("leonor", -0.6), at=14)
    saved = agent.save()
    path = agent.save(tmp_path / "npc.json")
    assert path.read_bytes() == saved
    again, from_file = Agent.load(saved, engine), Agent.load(path, engine)
    assert again.history == agent.history and again.beat == 12 and len(again.history) == 10
    assert again.save() == saved
    ahead = [agent.next_beat() for _ in range(4)]
    assert [again.next_beat() for _ in range(4)] == ahead
    assert [from_file.next_beat() for _ in range(4)] == ahead
    assert [Agent.load(saved.decode(), engine).next_beat() for _ in range(1)] == ahead[:1]  # the save as text
    assert ahead[1].events == ["blow"]
    with pytest.raises(StorydiffError, match="cannot read agent save"):
        Agent.load(saved.replace(b'"rng"', b'"gnr"'), engine)


def test_an_agent_plays_the_same_beats_whatever_other_agents_played_before(engine, nets):
    """Agents of one scene share compiled windows and conditionings; what one agent's pins made of
    them must not reach another (a conditioning built with one window's pins was once reused for
    a later window of the same shape, whichever agent had built it)."""
    from storydiff import agent as agents

    def play(seed: int, pin: Pin | None = None) -> list:
        agent = engine.agent(nets, seed=seed)
        for beat in range(30):
            if pin is not None and beat == 20:
                agent.pin(pin)
            agent.next_beat()
        return agent.history

    def cleared() -> None:
        for cache in (agents._WINDOWS, agents._TEMPLATES, agents._MEMO):
            cache.clear()

    cleared()
    alone = play(3)
    cleared()
    play(7, Pin(var="mara.felt.anger@25", min=0.6))
    assert play(3) == alone


@pytest.mark.parametrize("bad, message", [
    (lambda: Event(id="x", appraisals=[Appraisal(character="nobody", desirability=-1)]),
     "not in the cast"),
    (lambda: Event(id="x", agent="nobody"), "agent 'nobody' is not in the cast"),
    (lambda: Event(id="x", appraisals=[Appraisal(character="mara", desirability=-3)]), "outside"),
    (lambda: Event(id="x", appraisals=[Appraisal(character="mara", likelihood=float("nan"))]),
     "outside"),
    (lambda: "an explosion", "takes a storydiff.Event"),
])
def test_bad_events_raise_and_change_nothing(engine, nets, bad, message):
    agent = engine.agent(nets, seed=1)
    agent.next_beat()
    before = agent.save()
    with pytest.raises(StorydiffError, match=message):
        agent.observe(bad())
    assert agent.save() == before


def test_pins_that_cannot_hold_raise_naming_the_rows(engine, nets):
    agent = engine.agent(nets, seed=2)
    for _ in range(3):
        agent.next_beat()
    before = agent.save()
    # Mara's anger never exceeds 0.7 (her range), nor jumps that far in one beat (her volatility).
    conflict = r"pin 'mara.felt.anger@4' cannot hold.*pin:mara.felt.anger>=0.95@4"
    with pytest.raises(StorydiffError, match=conflict):
        agent.pin(Pin(var="mara.felt.anger@4", min=0.95))
    with pytest.raises(StorydiffError, match="is not open"):
        agent.pin(Pin(var="mara.felt.anger@2", min=0.1))
    with pytest.raises(StorydiffError, match="not in the cast"):
        agent.pin(Pin(var="odile.felt.anger@5", min=0.1))
    with pytest.raises(StorydiffError, match="no stance toward itself"):
        agent.pin(Pin(var="mara.stance.mara.trust@5", min=0.1))
    with pytest.raises(StorydiffError, match="is not open"):
        agent.observe(blow(), at=40)
    assert agent.save() == before
    agent.pin(Pin(var="mara.felt.anger@5", min=0.3))
    agent.next_beat()
    assert agent.next_beat().cell("mara").felt["anger"] >= 0.3 - 1e-6


def test_bad_options_are_refused(engine, nets):
    for options, message in (({"window": 1}, "window"), ({"sampler": "magic"}, "sampler"),
                             ({"steps": 0}, "steps"), ({"project": "sometimes"}, "project"),
                             ({"seed": 2**70}, "seed"), ({"start_sigma": 50.0}, "start_sigma")):
        with pytest.raises(StorydiffError, match=message):
            engine.agent(nets, **options)
    assert engine.agent(nets).state == {} and engine.agent(nets).pending == []


def test_the_game_loop_example_runs(tmp_path):
    """examples/game_loop.py, as a fresh checkout runs it: bundled characters, CPU, 50 beats."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "game_loop.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    beats = [line for line in lines if line.startswith("beat ")]
    assert len(beats) == 50 and beats[-1].startswith("beat 50")
    assert all(name in beats[0] for name in ("mara", "ilan", "leonor"))
    for beat, event in ((14, "squall"), (22, "catch"), (31, "taunt"), (40, "letter")):
        assert beats[beat - 1].endswith(f"<- {event}")
    assert lines[-1].startswith("50 beats in")
