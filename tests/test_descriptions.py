"""Written descriptions: the simulator writes them, the conditioning embeds them, training learns to read them."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_denoiser import tiny_condition, tiny_shard

from storydiff import embedding
from storydiff.cli import build_parser
from storydiff.conditioning import EMBED_DIM, condition_from
from storydiff.denoiser import Denoiser, DenoiserConfig
from storydiff.description import ITEMS, MARKERS, describe
from storydiff.engine import Engine
from storydiff.errors import StorydiffError
from storydiff.loader import read_model
from storydiff.models import Cast, Character, Personality, Situation
from storydiff.shards import Shard
from storydiff.simulator import feasible, generate_scene, random_cast, random_situation, simulate
from storydiff.train import TrainOptions, drop_conditions, make_trainer
from storydiff.vocab import BIG_FIVE
from storydiff.writer import to_xml


def _character(**traits: float) -> Character:
    return Character(id="c1", name="c1", personality=Personality(**traits))


def _mentions(text: str, trait: str, pole: int) -> bool:
    """Whether `text` names the pole (0 low, 1 high) of a trait, by an adjective or an item phrase."""
    words = text.lower().replace(".", " ").replace(",", " ").replace(":", " ").split()
    return any(w in words for w in MARKERS[trait][pole]) or any(p in text.lower() for p in ITEMS[trait][pole])


@pytest.mark.parametrize("trait", BIG_FIVE)
def test_descriptions_name_the_pole_of_an_extreme_trait_and_never_the_other(trait):
    rng = np.random.default_rng(0)
    for value, pole in ((0.95, 1), (0.05, 0)):
        texts = [describe(rng, _character(**{trait: value})) for _ in range(200)]
        assert np.mean([_mentions(t, trait, pole) for t in texts]) > 0.8
        assert 0.3 < np.mean([any(p in t.lower() for p in ITEMS[trait][pole]) for t in texts]) < 0.7  # phrases too
        assert not any(_mentions(t, trait, 1 - pole) for t in texts)


def test_an_average_character_gets_no_trait_words():
    rng = np.random.default_rng(1)
    texts = [describe(rng, _character()) for _ in range(100)]
    assert not any(_mentions(t, trait, pole) for t in texts for trait in BIG_FIVE for pole in (0, 1))


def test_simulated_characters_are_described_without_changing_their_scenes():
    cast, situation, x = generate_scene(np.random.default_rng([3, 4]))
    rng = np.random.default_rng([3, 4])  # the same draws, without the descriptions
    bare = random_cast(rng)
    plain = random_situation(rng, bare.ids())
    trajectory = simulate(bare, plain, rng)
    assert torch.equal(x, feasible(bare, situation, trajectory))
    assert all(c.description for c in cast.characters.values())
    assert [c.model_copy(update={"description": ""}) for c in cast.characters.values()] == list(bare.characters.values())


def _cast_with(*characters: Character) -> tuple[Cast, Situation]:
    cast = Cast(characters={c.id: c for c in characters}, cultures={})
    return cast, Situation(id="s", cast=[c.id for c in characters], beats=3)


def test_conditioning_embeds_only_written_descriptions():
    calls: list[list[str]] = []

    def fake_embed(texts: list[str]) -> torch.Tensor:
        calls.append(texts)
        return torch.ones(len(texts), EMBED_DIM)

    described = Character(id="a", name="A", description="  A fretful clerk.  ", personality=Personality())
    bare = Character(id="b", name="B")
    cast, situation = _cast_with(described, bare)
    cond = condition_from(cast, situation, fake_embed)
    assert calls == [["A fretful clerk."]]
    assert cond.description_mask.tolist() == [1.0, 0.0]
    assert cond.description[1].abs().sum() == 0
    assert condition_from(cast, situation).description_mask.tolist() == [0.0, 0.0]  # no embedder: unknown
    assert cond.trait_mask.tolist() == [1.0, 1.0]  # unwritten traits are average ...
    unknown = condition_from(cast, situation, unwritten_traits_unknown=True)
    assert unknown.trait_mask.tolist() == [1.0, 0.0]  # ... or, for a network trained for it, unknown


def test_a_character_without_written_traits_round_trips_without_them(tmp_path: Path):
    path = tmp_path / "b.character.xml"
    path.write_bytes(to_xml(Character(id="b", name="B", description="Quiet.")))
    assert b"personality" not in path.read_bytes()
    loaded = read_model(path)
    assert "personality" not in loaded.model_fields_set
    path.write_bytes(to_xml(_character(neuroticism=0.9)))
    assert read_model(path).personality.neuroticism == 0.9


def test_field_dropout_drops_traits_and_descriptions_per_character_and_keeps_the_rest():
    cond = replace(tiny_condition(400), description_mask=torch.ones(400, 2), culture_mask=torch.ones(400, 2))
    g = torch.Generator().manual_seed(0)
    out = drop_conditions(cond, 0.0, g, p_field=0.25)
    for name in ("trait_mask", "description_mask"):
        dropped = 1 - float(getattr(out, name).mean())
        assert 0.2 < dropped < 0.3
    assert not torch.equal(out.trait_mask, out.description_mask)  # independent draws
    assert torch.equal(out.culture_mask, cond.culture_mask) and torch.equal(out.event_mask, cond.event_mask)
    assert torch.equal(drop_conditions(cond, 0.0, g).trait_mask, cond.trait_mask)


def test_starting_to_read_descriptions_keeps_the_function_and_marks_the_config():
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(width=32, depth=1, heads=2)).eval()
    cond = tiny_condition(2)
    x = torch.randn(2, 2, 4, 47 + 3 * model.config.max_characters)
    sigma = torch.full((2,), 0.7)
    before = model(x, sigma, cond)
    model.start_reading_descriptions()
    described = replace(cond, description=torch.randn(2, 2, EMBED_DIM), description_mask=torch.ones(2, 2))
    assert model.config.reads_descriptions
    assert torch.allclose(model(x, sigma, described), before, atol=1e-6)


def test_cached_embeddings_survive_the_process_and_a_damaged_entry_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("STORYDIFF_CACHE", str(tmp_path))
    monkeypatch.setattr(embedding, "_memory", {})
    computed: list[list[str]] = []
    monkeypatch.setattr(embedding, "embed", lambda texts: computed.append(texts) or torch.rand(len(texts), EMBED_DIM))
    first = embedding.embed_cached(["quiet", "bold", "quiet"])
    assert computed == [["quiet", "bold"]] and torch.equal(first[0], first[2])
    monkeypatch.setattr(embedding, "_memory", {})  # a new process: only the disk remains
    assert torch.equal(embedding.embed_cached(["bold", "quiet"]), first[[1, 0]])
    assert len(computed) == 1
    next(tmp_path.rglob("*.safetensors")).write_bytes(b"not a tensor file")
    monkeypatch.setattr(embedding, "_memory", {})
    embedding.embed_cached(["quiet", "bold"])
    assert len(computed) == 2 and len(computed[1]) == 1


def test_training_on_described_characters_starts_reading_descriptions():
    shard = tiny_shard()
    described = Shard(shard.x, shard.mask, replace(shard.cond, description=torch.randn(4, 2, EMBED_DIM),
                                                    description_mask=torch.ones(4, 2)))
    opts = TrainOptions(steps=1, batch_size=2, log_every=10**9)
    undescribed = make_trainer([], opts, torch.device("cpu"), DenoiserConfig(width=32, depth=1, heads=2), shards=[shard])
    assert not undescribed.model.config.reads_descriptions
    trainer = make_trainer([], opts, torch.device("cpu"), DenoiserConfig(width=32, depth=1, heads=2), shards=[described])
    assert trainer.model.config.reads_descriptions
    start = 5 + 6
    assert not trainer.model.net.character_in.weight[:, start:start + EMBED_DIM].any()
    assert not trainer.model.config.traits_optional
    dropping = make_trainer([], replace(opts, field_dropout=0.25), torch.device("cpu"),
                            DenoiserConfig(width=32, depth=1, heads=2), shards=[shard])
    assert dropping.model.config.traits_optional


def test_training_can_ignore_descriptions_and_refuses_to_on_a_network_that_reads_them(tmp_path):
    shard = tiny_shard()
    described = Shard(shard.x, shard.mask, replace(shard.cond, description=torch.randn(4, 2, EMBED_DIM),
                                                    description_mask=torch.ones(4, 2)))
    opts = TrainOptions(steps=1, batch_size=2, log_every=10**9, read_descriptions=False)
    config = DenoiserConfig(width=32, depth=1, heads=2)
    trainer = make_trainer([], opts, torch.device("cpu"), config, shards=[described])
    assert not trainer.model.config.reads_descriptions
    assert all(not s.cond.description_mask.any() for s in trainer.shards)
    assert described.cond.description_mask.all()  # the caller's shard is left as it was
    reader = make_trainer([], replace(opts, read_descriptions=True), torch.device("cpu"), config, shards=[described])
    reader.run(tmp_path / "reader.safetensors")
    with pytest.raises(StorydiffError, match="reads descriptions"):
        make_trainer([], opts, torch.device("cpu"), init=tmp_path / "reader.safetensors", shards=[described])
    args = build_parser().parse_args(["train", "corpus/", "--out", "x.safetensors", "--ignore-descriptions"])
    assert args.ignore_descriptions


@pytest.mark.slow
def test_the_engine_tells_a_network_only_what_it_was_trained_to_read(engine):
    described = Character(id="a", name="A", description="Worries about things and gets upset easily.")
    cast, situation = _cast_with(described, Character(id="b", name="B"))
    assert not engine.model.config.reads_descriptions  # the bundled prior was not trained on them
    assert engine.condition(cast, situation).description_mask.tolist() == [0.0, 0.0]
    assert engine.condition(cast, situation).trait_mask.tolist() == [1.0, 1.0]
    model = Denoiser(DenoiserConfig(width=32, depth=1, heads=2, traits_optional=True))
    model.start_reading_descriptions()
    reader = Engine(model, {}, torch.device("cpu"))
    cond = reader.condition(cast, situation)
    assert cond.description_mask.tolist() == [1.0, 0.0] and cond.trait_mask.tolist() == [0.0, 0.0]
    assert torch.allclose(cond.description[0], embedding.embed([described.description])[0], atol=1e-5)
