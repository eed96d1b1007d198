"""The simulator corpus: believable dynamics (OCC, display rules, stance), feasibility, the shard format."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from storydiff.affect import EMOTION_FAMILY, NEUTRALISE_EPSILON
from storydiff.conditioning import EVENT_FEATURES, condition_from
from storydiff.constraints import compile_constraints
from storydiff.corpus import (
    MANIFEST,
    iterate_corpus,
    load_corpus,
    scene_rng,
    write_corpus,
)
from storydiff.embedding import embed
from storydiff.layout import FELT, SHOWN, STANCE_START, StateLayout
from storydiff.models import (
    Appraisal,
    Cast,
    Character,
    DisplayRule,
    Event,
    Personality,
    Pin,
    Relation,
    Situation,
)
from storydiff.simulator import (
    InfeasibleScene,
    feasible,
    generate_scene,
    random_cast,
    random_situation,
    simulate,
)
from storydiff.vocab import OCC_EMOTIONS, STANCE

pytestmark = pytest.mark.usefixtures("one_thread")


def felt(x: torch.Tensor, character: int, beat: int, emotion: str) -> float:
    return float(x[character, beat, FELT.start + OCC_EMOTIONS.index(emotion)])


def shown(x: torch.Tensor, character: int, beat: int, emotion: str) -> float:
    return float(x[character, beat, SHOWN.start + OCC_EMOTIONS.index(emotion)])


def family(x: torch.Tensor, character: int, beat: int, head: str) -> float:
    return sum(felt(x, character, beat, e) for e in EMOTION_FAMILY[head])


def stance(x: torch.Tensor, character: int, beat: int, other: int, item: str) -> float:
    return float(x[character, beat, STANCE_START + len(STANCE) * other + STANCE.index(item)])


def scene_pair(seed: int, event: Event) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random scene simulated without any event and with only `event` (same noise)."""
    rng = np.random.default_rng(seed)
    cast = random_cast(rng)
    situation = random_situation(rng, cast.ids()).model_copy(update={"events": []})
    before = simulate(cast, situation, np.random.default_rng([seed, 1]))
    after = simulate(cast, situation.model_copy(update={"events": [event]}), np.random.default_rng([seed, 1]))
    return before, after


@pytest.mark.parametrize("seed", range(5))
def test_undesirable_event_raises_distress_family_at_its_beat(seed: int) -> None:
    blow = Event(id="blow", beat=3, appraisals=[Appraisal(character="c1", desirability=-0.8)])
    before, after = scene_pair(seed, blow)
    assert torch.equal(before[:, :2], after[:, :2])  # nothing happens before the event
    assert family(after, 0, 2, "distress") >= family(before, 0, 2, "distress") + 0.3
    assert family(after, 0, 2, "distress") >= 0.4  # OCC bound: EVENT_GAIN·|desirability|·likelihood


def test_fortunes_of_others_follow_liking() -> None:
    """Someone who likes the victim pities them; someone who dislikes them gloats (OCC ch. 5)."""
    personality = Personality(agreeableness=0.5)
    cast = Cast(characters={
        "a": Character(id="a", name="A", personality=personality),
        "b": Character(id="b", name="B", personality=personality, relations=[Relation(to="a", liking=0.8)]),
        "c": Character(id="c", name="C", personality=personality, relations=[Relation(to="a", liking=-0.8)]),
    })
    calm = Situation(id="s", cast=["a", "b", "c"], beats=4)
    blow = Event(id="blow", beat=2, appraisals=[Appraisal(character="a", desirability=-1.0)])
    before = simulate(cast, calm, np.random.default_rng(0))
    after = simulate(cast, calm.model_copy(update={"events": [blow]}), np.random.default_rng(0))
    assert felt(after, 1, 1, "pity") > felt(before, 1, 1, "pity") + 0.2
    assert felt(after, 2, 1, "gloating") > felt(before, 2, 1, "gloating") + 0.2
    assert felt(after, 1, 1, "gloating") == felt(before, 1, 1, "gloating")


def test_blameworthy_act_lowers_the_targets_liking_and_trust() -> None:
    friends = Relation(to="ilan", liking=0.4, trust=0.5)
    cast = Cast(characters={"mara": Character(id="mara", name="Mara", relations=[friends]),
                            "ilan": Character(id="ilan", name="Ilan")})
    calm = Situation(id="s", cast=["mara", "ilan"], beats=8)
    sale = Event(id="sale", beat=3, agent="ilan", target="mara", appraisals=[
        Appraisal(character="mara", desirability=-0.8, praiseworthiness=-0.9)])
    before = simulate(cast, calm, np.random.default_rng(0))
    after = simulate(cast, calm.model_copy(update={"events": [sale]}), np.random.default_rng(0))
    for item in ("liking", "trust"):
        assert stance(after, 0, 7, 1, item) < stance(before, 0, 7, 1, item) - 0.2
        assert stance(after, 1, 7, 0, item) == stance(before, 1, 7, 0, item)  # Ilan's view of Mara is his own


def test_neutralise_in_public_keeps_felt_fear_off_the_face() -> None:
    mara = Character(id="mara", name="Mara", display_rules=[
        DisplayRule(emotion="fear", audience="public", kind="neutralise")])
    cast = Cast(characters={"mara": mara, "ilan": Character(id="ilan", name="Ilan")})
    dread = [Appraisal(character=c, desirability=-0.9, likelihood=0.9) for c in ("mara", "ilan")]
    wave = Event(id="wave", beat=2, status="prospective", appraisals=dread)
    situation = Situation(id="storm", cast=["mara", "ilan"], beats=4, publicness=1.0, events=[wave])
    x = simulate(cast, situation, np.random.default_rng(0))
    assert felt(x, 0, 1, "fear") >= 0.4
    assert shown(x, 0, 1, "fear") <= NEUTRALISE_EPSILON < felt(x, 0, 1, "fear")
    assert shown(x, 1, 1, "fear") > 0.3  # no rule for Ilan: his face shows it
    private = simulate(cast, situation.model_copy(update={"publicness": 0.0}), np.random.default_rng(0))
    assert shown(private, 0, 1, "fear") > 0.3  # the rule names the public audience only


@pytest.mark.parametrize("seed", range(12))
def test_generated_scenes_lie_in_their_polytope(seed: int) -> None:
    cast, situation, x = generate_scene(scene_rng(0, seed))
    layout = StateLayout(situation.cast, situation.beats)
    assert x.dtype == torch.float32 and x.shape == layout.shape
    assert 2 <= len(situation.cast) <= 8 and 6 <= situation.beats <= 24 and 1 <= len(situation.events) <= 4
    polytope = compile_constraints(cast, situation)
    assert float(polytope.violation(layout.flatten(x.double().unsqueeze(0)))) <= 1e-6
    assert not x[~layout.mask()].any()  # padding (self stance, absent slots) stays zero


def test_feasible_projects_an_infeasible_state() -> None:
    cast, situation, x = generate_scene(scene_rng(0, 1))
    off = x.double() + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    layout = StateLayout(situation.cast, situation.beats)
    polytope = compile_constraints(cast, situation)
    assert float(polytope.violation(layout.flatten(off.unsqueeze(0)))) > 1e-3
    y = feasible(cast, situation, off)
    assert float(polytope.violation(layout.flatten(y.unsqueeze(0)))) <= 1e-6


def test_contradictory_rules_are_reported_not_written() -> None:
    cast = Cast(characters={"a": Character(id="a", name="A")})
    situation = Situation(id="knot", cast=["a"], beats=2, pins=[
        Pin(var="a.felt.joy@1", min=0.9), Pin(var="a.felt.joy@1", max=0.1)])
    with pytest.raises(InfeasibleScene, match="knot"):
        feasible(cast, situation, simulate(cast, situation, np.random.default_rng(0)))


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_corpus_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first, again, other = (write_corpus(5, tmp_path / name, seed=seed, shard_size=3).parent
                           for name, seed in (("a", 11), ("b", 11), ("c", 12)))
    assert shard_bytes(first) == shard_bytes(again)
    assert shard_bytes(first)["shard-00000.safetensors"] != shard_bytes(other)["shard-00000.safetensors"]


def test_corpus_streams_shard_by_shard_and_round_trips(tmp_path: Path) -> None:
    seen = []
    path = write_corpus(5, tmp_path, seed=3, shard_size=2, progress=lambda done, _: seen.append(done))
    manifest = json.loads(path.read_text())
    assert seen == [2, 4, 5]
    assert len(manifest["shards"]) == math.ceil(5 / 2)
    assert [s["count"] for s in manifest["shards"]] == [2, 2, 1]
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == [s["file"] for s in manifest["shards"]]
    assert manifest["n"] == 5 and manifest["seed"] == 3 and len(manifest["layout"]["feature_names"]) == 95

    shards = list(iterate_corpus(tmp_path))
    x, mask, cond = shards[1]
    assert x.shape == mask.shape == (2, 8, 24, 95) and cond.traits.shape == (2, 8, 5)
    cast, situation, scene = generate_scene(scene_rng(3, 3))  # shard 1 holds scenes 2 and 3
    C, T = scene.shape[:2]
    assert torch.equal(x[1, :C, :T], scene) and not x[1, C:].any() and not x[1, :, T:].any()
    assert torch.equal(mask[1, :C, :T], StateLayout(situation.cast, situation.beats).mask())
    assert not mask[1, C:].any() and not mask[1, :, T:].any()
    expected = condition_from(cast, situation)
    assert torch.equal(cond.events[1, :C, :T], expected.events)
    assert torch.equal(cond.relations[1, :C, :C], expected.relations)
    assert cond.characters[1].sum() == C and cond.beats[1].sum() == T and cond.description_mask[1].sum() == C
    described = embed([cast[c].description for c in situation.cast])  # the real MiniLM model
    assert torch.allclose(cond.description[1, :C], described, atol=1e-5) and not cond.description[1, C:].any()
    assert not cond.from_text.any()

    everything = load_corpus(tmp_path)
    assert len(everything) == 5 and torch.equal(everything.x[2:4], shards[1][0])


def test_corpus_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from storydiff.cli import main

    assert main(["corpus", "--n", "2", "--out", str(tmp_path), "--seed", "5", "--shard-size", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / MANIFEST)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def test_shards_written_before_the_source_flag_get_it_inferred(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from storydiff.shards import load_shard

    write_corpus(2, tmp_path, seed=4, shard_size=2)
    path = tmp_path / "shard-00000.safetensors"
    tensors = load_file(str(path))
    tensors["cond.trait_mask"][1] = 0  # scene 1 now looks like real text: no traits, no events
    tensors["cond.event_mask"][1] = 0
    del tensors["cond.from_text"]
    save_file(tensors, str(path))
    assert load_shard(path).cond.from_text.flatten().tolist() == [0.0, 1.0]


def test_shards_written_before_the_agent_features_pad_real_text_and_refuse_simulated_scenes(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from storydiff.errors import StorydiffError
    from storydiff.shards import load_shard

    write_corpus(2, tmp_path, seed=4, shard_size=2)
    path = tmp_path / "shard-00000.safetensors"
    tensors = load_file(str(path))
    tensors["cond.events"] = tensors["cond.events"][..., :6].contiguous()  # the first release's six
    save_file(tensors, str(path))
    with pytest.raises(StorydiffError, match="generate it again with `storydiff corpus`"):
        load_shard(path)
    tensors["cond.event_mask"][:] = 0  # real text: no events, so the new features are known to be 0
    tensors["cond.events"][:] = 0
    save_file(tensors, str(path))
    events = load_shard(path).cond.events
    assert events.shape[-1] == len(EVENT_FEATURES) and not events.any()


def test_conditioning_says_whose_act_an_event_was() -> None:
    ids = ["a", "b", "c"]
    cast = Cast(characters={i: Character(id=i, name=i.upper(), personality=Personality()) for i in ids})
    act = Event(id="e1", beat=2, agent="a", target="b", appraisals=[
        Appraisal(character="a", desirability=0.2, praiseworthiness=-0.5),
        Appraisal(character="b", desirability=-0.6, praiseworthiness=-0.5)])
    storm = Event(id="e2", beat=3, status="prospective", appraisals=[Appraisal(character="c", desirability=-0.4)])
    situation = Situation(id="s", cast=ids, beats=4, events=[act, storm])
    events = condition_from(cast, situation).events
    own, others = EVENT_FEATURES.index("own-act"), EVENT_FEATURES.index("others-act")
    assert events[0, 1, own] == 1 and events[0, 1, others] == 0  # a did it: shame, not reproach
    assert events[1, 1, own] == 0 and events[1, 1, others] == 1  # b suffered it: reproach, anger
    assert events[2, 2, own] == 0 and events[2, 2, others] == 0  # a storm is nobody's act
    assert events[2, 2, EVENT_FEATURES.index("present")] == 1
    branch = {name: EVENT_FEATURES.index(name) for name in
              ("praiseworthiness-own-act", "praiseworthiness-others-act", "desirability-prospective")}
    assert events[0, 1, branch["praiseworthiness-own-act"]] == -0.5  # shame's driver
    assert events[0, 1, branch["praiseworthiness-others-act"]] == 0
    assert events[1, 1, branch["praiseworthiness-others-act"]] == -0.5  # reproach's driver
    assert events[1, 1, branch["praiseworthiness-own-act"]] == 0
    assert events[2, 2, branch["desirability-prospective"]] == -0.4  # a storm that may break: fear's driver
    assert events[:2, ..., branch["desirability-prospective"]].eq(0).all()  # the act has happened
