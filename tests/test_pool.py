"""A pool steps scenes of different casts together and gives each the beats it would play alone."""
from __future__ import annotations

import pytest
import torch

from storydiff import Appraisal, Event
from storydiff.agent import Agent
from storydiff.errors import StorydiffError
from storydiff.loader import bundled_library, load_characters, load_situation

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def situations():
    library = bundled_library()
    cast = load_characters(library)
    return [load_situation(library / "situations" / f"{name}.situation.xml", cast)
            for name in ("storm", "mending-nets", "the-wake")]


def agents(engine, situations) -> list[Agent]:
    """Three scenes of 2, 3 and 5 characters, with different windows and seeds."""
    return [engine.agent(s, seed=10 + k, window=w) for k, (s, w) in enumerate(zip(situations, (6, 12, 8)))]


def values(agent: Agent) -> torch.Tensor:
    return agent._values.clone()


def test_pool_gives_the_beats_each_scene_plays_alone(engine, situations):
    pooled, alone = agents(engine, situations), agents(engine, situations)
    pool = engine.pool(pooled)
    grief = Event(id="news", beat=0, appraisals=[Appraisal(character="mara", desirability=-0.9)])
    for beat in range(14):
        if beat == 9:
            pooled[0].observe(grief)
            alone[0].observe(grief)
        beats = pool.next_beat()
        assert [b.beat for b in beats] == [beat + 1] * 3
        assert all(c.binding for b in beats for c in b.cells[:1])
        for a in alone:
            a.next_beat()
    for p, a in zip(pooled, alone):
        assert p.beat == a.beat == 14
        assert torch.allclose(values(p), values(a), atol=1e-5, rtol=0)
    # A scene does not depend on what else is in the pool: the same scene with other company.
    other = [agents(engine, situations)[1], engine.agent(situations[0], seed=99)]
    for _ in range(14):
        engine.pool(other).next_beat()
    assert torch.allclose(values(other[0]), values(pooled[1]), atol=1e-5, rtol=0)


def test_a_changing_pool_keeps_each_scene_its_own_and_builds_beats_on_demand(engine, situations):
    """Scenes joining and leaving change the stacked batch; each scene still plays what it plays alone.
    The pool's beats are the agents' own history entries, built once when first read."""
    pooled, alone = agents(engine, situations), agents(engine, situations)
    pool = engine.pool(pooled[:2])
    for beat in range(12):
        if beat == 4:
            pool.add(pooled[2])
        if beat == 8:
            pool.remove(pooled[0])
        beats = pool.next_beat()
        for a, b, v in zip(pool, beats, beats.values()):
            assert b is a.history[-1] and b.beat == a.beat
            assert torch.equal(v, a._values[:, -1])
        for k, a in enumerate(alone):
            if not (k == 2 and beat < 4 or k == 0 and beat >= 8):
                a.next_beat()
    for p, a in zip(pooled, alone):
        assert p.beat == a.beat
        assert torch.allclose(values(p), values(a), atol=1e-5, rtol=0)
    assert [b.beat for b in beats[::-1]] == [8, 12]


def test_pool_refuses_mixed_settings_and_fails_as_a_whole(engine, situations, monkeypatch):
    a = engine.agent(situations[0], seed=0)
    b = engine.agent(situations[1], seed=0, steps=8)
    with pytest.raises(StorydiffError, match="share sampler, steps"):
        engine.pool([a, b])
    with pytest.raises(StorydiffError, match="already in the pool"):
        engine.pool([a, a])
    with pytest.raises(StorydiffError, match="storydiff agents"):
        engine.pool([a, "npc"])
    pool = engine.pool([a, engine.agent(situations[1], seed=0)])
    assert len(pool) == 2 and next(iter(pool)) is a
    before = a.save()

    def broken():
        raise StorydiffError("scene lost")

    monkeypatch.setattr(pool.agents[1], "_plan", broken)  # the second scene fails after the first drew noise
    with pytest.raises(StorydiffError, match="scene lost"):
        pool.next_beat()
    assert a.save() == before
