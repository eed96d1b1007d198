"""The prior: x-prediction wiring, memorisation against the ideal denoiser, exact training resume."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from storydiff.conditioning import EVENT_FEATURES, SceneCondition
from storydiff.denoiser import Denoiser, DenoiserConfig
from storydiff.limits import LIMIT_FEATURES
from storydiff.shards import Shard
from storydiff.train import Trainer, TrainOptions

C, T = 2, 4


def tiny_condition(n: int) -> SceneCondition:
    return SceneCondition(
        traits=torch.full((n, C, 5), 0.5), culture=torch.zeros(n, C, 6), description=torch.zeros(n, C, 384),
        relations=torch.zeros(n, C, C, 3), mood=torch.zeros(n, C, 3), events=torch.zeros(n, C, T, len(EVENT_FEATURES)),
        limits=torch.zeros(n, C, T, LIMIT_FEATURES), publicness=torch.zeros(n, 1),
        trait_mask=torch.ones(n, C), culture_mask=torch.zeros(n, C), description_mask=torch.zeros(n, C),
        event_mask=torch.ones(n, 1), characters=torch.ones(n, C), beats=torch.ones(n, T),
        from_text=torch.zeros(n, 1))


def tiny_shard(n: int = 4, seed: int = 0) -> Shard:
    g = torch.Generator().manual_seed(seed)
    config = DenoiserConfig(width=32, depth=1, heads=2)
    features = 47 + 3 * config.max_characters
    x = torch.zeros(n, C, T, features)
    x[..., :47] = torch.rand(n, C, T, 47, generator=g)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[..., :47] = True
    return Shard(x, mask, tiny_condition(n))


def ideal_denoiser(x: torch.Tensor, sigma: float, data: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Closed-form optimum of the denoising loss on a finite set: softmax-weighted mean (Permenter & Yuan 2024)."""
    d2 = (((x[:, None] - data[None]) * mask) ** 2).flatten(2).sum(-1)
    w = torch.softmax(-d2 / (2 * sigma ** 2), dim=1)
    return torch.einsum("bn,n...->b...", w, data)


def scrambled_model() -> Denoiser:
    """A tiny network with every weight random: zero-initialised gates and read-outs would hide the wiring."""
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(width=32, depth=1, heads=2))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model


def test_each_parameterisation_maps_the_network_output_to_its_clean_scene_estimate():
    model = scrambled_model()
    shard = tiny_shard(2)
    sigma = torch.tensor([3.0, 3.0])
    s, sd = 3.0, 0.5
    raw = model.net(shard.x / (s ** 2 + sd ** 2) ** 0.5, sigma.log() / 4, shard.cond)
    expected = {
        "x": raw,  # Li & He 2025: the output is the clean scene, no skip
        "eps": shard.x - s * raw,
        "edm": sd ** 2 / (s ** 2 + sd ** 2) * shard.x + s * sd / (s ** 2 + sd ** 2) ** 0.5 * raw,
    }
    assert DenoiserConfig().parameterisation == "edm"
    for kind, estimate in expected.items():
        model.config.parameterisation = kind
        assert torch.allclose(model(shard.x, sigma, shard.cond), estimate, atol=1e-6), kind


def test_source_flag_starts_as_no_change_and_then_moves_the_output():
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(width=32, depth=1, heads=2))
    shard, sigma = tiny_shard(2), torch.tensor([1.0, 1.0])
    text = replace(shard.cond, from_text=torch.ones(2, 1))
    assert torch.equal(model(shard.x, sigma, shard.cond), model(shard.x, sigma, text))
    torch.nn.init.normal_(model.net.source_in.weight, std=0.5)
    for block in model.net.blocks:  # open the adaLN-zero gates, or nothing reaches the output
        torch.nn.init.normal_(block.ada[2].mod.weight, std=0.05)
    assert not torch.allclose(model(shard.x, sigma, shard.cond), model(shard.x, sigma, text))


def test_tiny_denoiser_memorises_and_matches_the_ideal_denoiser():
    shard = tiny_shard(4)
    # The optimum is the same for every parameterisation; x-prediction reaches it on four
    # points in the fewest steps (EDM's skip needs ~2x as many), which keeps the test short.
    config = DenoiserConfig(width=64, depth=2, heads=2, p_mean=-0.7, p_std=0.3, parameterisation="x")
    torch.manual_seed(0)
    opts = TrainOptions(steps=600, batch_size=4, lr=2e-3, warmup=20, cond_dropout=0.0, log_every=10**9)
    trainer = Trainer(Denoiser(config), [shard], opts, torch.device("cpu"))
    trainer.run(out=None)
    model = trainer.model.eval()
    sigma = 0.5  # ≈ σ_data: the ideal denoiser is far from the input here
    g = torch.Generator().manual_seed(1)
    mask = shard.mask.float()
    x = (shard.x + sigma * torch.randn(shard.x.shape, generator=g)) * mask
    with torch.no_grad():
        ours = model(x, torch.full((4,), sigma), shard.cond) * mask
    ideal = ideal_denoiser(x, sigma, shard.x, mask)
    err = ((ours - ideal) ** 2).sum().sqrt() / (ideal ** 2).sum().sqrt()
    moved = ((x - ideal) ** 2).sum().sqrt() / (ideal ** 2).sum().sqrt()
    assert moved > 0.5, "the test must be at a noise level where denoising changes the input"
    assert err < 0.1 * moved, f"relative error {err:.3f} vs input distance {moved:.3f}"


def test_training_resumes_exactly(tmp_path):
    shard = tiny_shard(4)
    config = DenoiserConfig(width=32, depth=1, heads=2)
    opts = TrainOptions(steps=6, batch_size=2, warmup=2, log_every=10**9, save_every=10**9)

    torch.manual_seed(0)
    straight = Trainer(Denoiser(config), [shard], opts, torch.device("cpu"))
    straight.run(out=None)

    torch.manual_seed(0)
    first = Trainer(Denoiser(config), [shard], TrainOptions(**{**vars(opts), "steps": 3}), torch.device("cpu"))
    first.run(out=tmp_path / "half")
    from storydiff.train import make_trainer

    second = make_trainer([], opts, torch.device("cpu"), resume=tmp_path / "half.safetensors", shards=[shard])
    second.run(out=None)
    for a, b in zip(straight.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.ema, second.ema, strict=True):
        assert torch.equal(a, b)
    import pytest

    from storydiff.errors import StorydiffError

    state = tmp_path / "half.train.pt"
    state.write_bytes(state.read_bytes()[:500])
    with pytest.raises(StorydiffError, match="half.train.pt: damaged training state"):
        make_trainer([], opts, torch.device("cpu"), resume=tmp_path / "half.safetensors", shards=[shard])
    state.unlink()
    with pytest.raises(StorydiffError, match="half.train.pt: no training state to resume from"):
        make_trainer([], opts, torch.device("cpu"), resume=tmp_path / "half.safetensors", shards=[shard])


def test_bf16_autocast_runs_the_network_in_bfloat16_and_keeps_float32_weights(monkeypatch):
    # Off by default on CPU; forced here, as a GPU run takes it: the forward pass under autocast, the
    # loss, weights and optimiser in float32, and a step that still learns.
    shard = tiny_shard(4)
    config = DenoiserConfig(width=32, depth=1, heads=2)
    assert not Trainer(Denoiser(config), [shard], TrainOptions(), torch.device("cpu")).bf16
    torch.manual_seed(0)
    trainer = Trainer(Denoiser(config), [shard], TrainOptions(steps=4, batch_size=4, warmup=1, lr=1e-2, bf16=True),
                      torch.device("cpu"))
    seen = []
    forward = trainer.model.net.forward
    monkeypatch.setattr(trainer.model.net, "forward", lambda *a: seen.append(
        (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))) or forward(*a))
    losses = [trainer.train_step() for _ in range(4)]
    assert seen == [(True, torch.bfloat16)] * 4
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    out = trainer.model.net(shard.x[:1], torch.zeros(1), shard.cond.select(torch.tensor([0])))
    assert out.dtype == torch.float32  # outside autocast, sampling is untouched


def test_checkpoints_hold_the_weight_average_not_the_last_step(tmp_path):
    from storydiff.checkpoint import load_checkpoint

    shard = tiny_shard(4)
    opts = TrainOptions(steps=20, batch_size=2, warmup=2, lr=1e-2, ema=0.9, log_every=10**9, save_every=10**9)
    torch.manual_seed(0)
    trainer = Trainer(Denoiser(DenoiserConfig(width=32, depth=1, heads=2)), [shard], opts, torch.device("cpu"))
    trainer.run(out=tmp_path / "ckpt")
    saved, _ = load_checkpoint(tmp_path / "ckpt.safetensors")
    raw = dict(trainer.model.named_parameters())
    moved = 0
    for (name, p), avg in zip(saved.named_parameters(), trainer.ema, strict=True):
        assert torch.equal(p, avg), name
        moved += int(not torch.allclose(p, raw[name]))
    assert moved > 0, "after 20 steps at lr 1e-2 the average must trail the raw weights"


def test_bundled_checkpoint_loads_and_denoises_scene_shaped_tensors():
    from storydiff.checkpoint import default_checkpoint, load_checkpoint

    model, meta = load_checkpoint(default_checkpoint())
    assert default_checkpoint().stat().st_size <= 10 * 1024 * 1024
    assert meta["config"]["parameterisation"] == "edm" and len(meta["hash"]) == 16
    x = torch.randn(2, C, T, 47 + 3 * model.config.max_characters)
    cond = tiny_condition(2)
    with torch.no_grad():
        out = model(x, torch.tensor([1.0, 0.1]), cond)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_corrupt_or_mismatched_checkpoints_give_one_clear_error(tmp_path):
    import shutil

    import pytest

    from storydiff.checkpoint import config_path, default_checkpoint, load_checkpoint
    from storydiff.errors import StorydiffError

    bad = tmp_path / "bad.safetensors"
    shutil.copy(config_path(default_checkpoint()), config_path(bad))
    bad.write_bytes(default_checkpoint().read_bytes()[:1000])
    with pytest.raises(StorydiffError, match="corrupt checkpoint"):
        load_checkpoint(bad)
    other = tmp_path / "other.safetensors"
    from storydiff.checkpoint import save_checkpoint

    save_checkpoint(Denoiser(DenoiserConfig(width=32, depth=1, heads=2)), other)
    shutil.copy(config_path(default_checkpoint()), config_path(other))
    with pytest.raises(StorydiffError, match="do not match its config"):
        load_checkpoint(other)
    with pytest.raises(StorydiffError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    import json

    small = save_checkpoint(Denoiser(DenoiserConfig(width=32, depth=1, heads=2)), tmp_path / "small.safetensors")
    meta = json.loads(config_path(small).read_text())
    for change, problem in ((("config", "parameterisation", "zzz"), "parameterisation must be"),
                            (("config", "sigma_data", 0), "sigma_data > 0"),
                            (("config", "width", "wide"), "width must be a whole number"),
                            (("format", None, "other/9"), "format 'other/9'")):
        broken = json.loads(json.dumps(meta))
        section, key, value = change
        if key is None:
            broken[section] = value
        else:
            broken[section][key] = value
        config_path(small).write_text(json.dumps(broken))
        with pytest.raises(StorydiffError, match=problem):
            load_checkpoint(small)
    diverged = Denoiser(DenoiserConfig(width=32, depth=1, heads=2))
    with torch.no_grad():
        diverged.net.token_out.bias[0] = float("nan")
    save_checkpoint(diverged, small)
    with pytest.raises(StorydiffError, match="token_out.bias holds NaN"):
        load_checkpoint(small)


def test_stance_context_reads_neighbouring_beats_and_the_scene_mean_of_live_beats_only():
    from storydiff.denoiser import stance_context

    stance = torch.tensor([1.0, 3.0, 5.0, 100.0])[None, None, None, :, None].expand(1, 1, 1, 4, 3)
    live = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the fourth beat is padding: its stance must not leak in
    out = stance_context(stance, live)[0, 0, 0, :, 0::3]  # one stance value: own, before, after, mean
    values = [1.0, 3.0, 5.0]
    assert out[:3, 0].tolist() == values
    assert out[:3, 1].tolist() == [0.0, 1.0, 3.0]
    assert out[:3, 2].tolist() == [3.0, 5.0, 0.0]
    assert torch.allclose(out[:3, 3], torch.full((3,), sum(values) / 3))


def test_a_checkpoint_from_before_the_grown_inputs_loads_as_the_same_function(tmp_path):
    from safetensors.torch import load_file, save_file

    from storydiff.checkpoint import load_checkpoint, save_checkpoint
    from storydiff.denoiser import STANCE_CONTEXT

    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(width=32, depth=1, heads=2)).eval()
    first = model.net.pair_out[0]
    with torch.no_grad():
        first.weight[:, -(STANCE_CONTEXT - 3):] = 0  # an older network had the pair's own stance only
        model.net.event_in.weight[:, 6:] = 0  # ... and six event features, without whose act it was
        model.net.character_in.weight[:, -3:] = 0  # ... and no masks among the character's inputs
        model.net.token_in.weight[:, 47:] = 0  # ... and no limits beside a token's values
    path = save_checkpoint(model, tmp_path / "old.safetensors")
    state = load_file(str(path))
    state["net.pair_out.0.weight"] = state["net.pair_out.0.weight"][:, : 2 * 32 + 6].contiguous()
    state["net.event_in.weight"] = state["net.event_in.weight"][:, :6].contiguous()
    state["net.character_in.weight"] = state["net.character_in.weight"][:, :-3].contiguous()
    state["net.token_in.weight"] = state["net.token_in.weight"][:, :47].contiguous()
    save_file(state, str(path))
    loaded, _ = load_checkpoint(path)
    x, sigma, cond = torch.randn(2, C, T, 47 + 3 * 16), torch.tensor([0.5, 2.0]), tiny_condition(2)
    cond.events[..., :6] = torch.randn(2, C, T, 6)
    cond.limits.uniform_()  # read with zero weights by the loaded network, as by the old one
    with torch.no_grad():
        assert torch.equal(loaded(x, sigma, cond), model(x, sigma, cond))


def test_stance_readout_is_the_pair_mlp_on_concatenated_features():
    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig(width=32, depth=1, heads=2)).net
    b, c, t = 2, 3, 4
    h, relations, stance = torch.randn(b, c, t, 32), torch.randn(b, c, c, 3), torch.randn(b, c, c, t, 12)
    hi = h[:, :, None].expand(b, c, c, t, 32)
    hj = h[:, None].expand(b, c, c, t, 32)
    rel = relations[:, :, :, None].expand(b, c, c, t, 3)
    expected = net.pair_out(torch.cat([hi, hj, rel, stance], dim=-1))
    assert torch.allclose(net._stance(h, relations, stance), expected, atol=1e-6)


def test_train_command_trains_resumes_and_names_a_bad_shard(tmp_path, capsys):
    from storydiff.checkpoint import load_checkpoint
    from storydiff.cli import main
    from storydiff.corpus import write_corpus

    corpus = write_corpus(3, tmp_path / "corpus", seed=2).parent
    out = tmp_path / "eps.safetensors"
    small = ["--batch-size", "2", "--width", "32", "--depth", "1", "--log-every", "1"]
    assert main(["train", str(corpus), "--out", str(out), "--steps", "2", "--parameterisation", "eps", *small]) == 0
    model, meta = load_checkpoint(out)
    assert model.config.parameterisation == "eps" and meta["trained"]["completed_steps"] == 2
    assert main(["train", str(corpus), "--out", str(out), "--resume", str(out), "--steps", "3", *small]) == 0
    assert load_checkpoint(out)[1]["trained"]["completed_steps"] == 3
    capsys.readouterr()

    assert main(["train", str(corpus / "manifest.json"), "--out", str(out), *small]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "manifest.json: not a corpus shard" in error


def test_conditioning_gives_each_pair_its_static_stance_and_each_character_its_baseline_mood():
    from storydiff.affect import default_mood
    from storydiff.conditioning import condition_from
    from storydiff.models import Cast, Character, Mood, Personality, Relation, Situation

    calm = Personality(openness=0.5, conscientiousness=0.5, extraversion=0.8, agreeableness=0.7, neuroticism=0.2)
    cast = Cast(characters={
        "mara": Character(id="mara", name="Mara", relations=[Relation(to="ilan", liking=0.4, dominance=0.2, trust=0.6)],
                          mood=Mood(pleasure=-0.3, arousal=0.1, dominance=0.2)),
        "ilan": Character(id="ilan", name="Ilan", personality=calm),
        "tove": Character(id="tove", name="Tove"),
    })
    cond = condition_from(cast, Situation(id="s", cast=["mara", "ilan", "tove"], beats=2))
    assert cond.relations[0, 1].tolist() == pytest.approx([0.4, 0.2, 0.6])
    assert cond.relations[1, 0].tolist() == pytest.approx([0.4, -0.2, 0.6])  # she leads him: he defers
    assert cond.relations[:, 2].abs().sum() == 0 and cond.relations[2].abs().sum() == 0  # nobody wrote one
    assert cond.mood[0].tolist() == pytest.approx([-0.3, 0.1, 0.2])  # written
    assert cond.mood[1].tolist() == pytest.approx(list(default_mood(calm)))  # Mehrabian's, from his traits
    assert cond.null().mood.abs().sum() == 0


def _informed_condition(n: int) -> SceneCondition:
    cond = tiny_condition(n)
    cond.relations.uniform_(-1, 1)
    cond.relations[:, range(C), range(C)] = 0
    cond.mood.uniform_(-1, 1)
    return cond


def test_stance_and_mood_are_denoised_as_departures_from_what_the_condition_says():
    from storydiff.denoiser import scene_base

    model = scrambled_model()
    cond = _informed_condition(2)
    x, sigma = torch.randn(2, C, T, 47 + 3 * 16), torch.tensor([0.3, 3.0])
    base = scene_base(cond, x.shape, model.config)
    assert base[1, 0, 2, 44:47].tolist() == cond.mood[1, 0].tolist()
    assert base[1, 0, 2, 47:50].tolist() == cond.relations[1, 0, 0].tolist()  # 0 toward itself ...
    assert base[1, 0, 2, 50:53].tolist() == cond.relations[1, 0, 1].tolist()  # ... its relation toward the other
    assert base[..., :44].abs().sum() == 0 and base[..., 47 + 3 * C:].abs().sum() == 0
    stance_only = replace(model.config, mood_from_baseline=False)
    assert scene_base(cond, x.shape, stance_only)[..., 44:47].abs().sum() == 0
    neither = replace(stance_only, stance_from_relations=False)
    assert scene_base(cond, x.shape, neither) is None
    for kind in ("x", "eps", "edm"):
        model.config = replace(model.config, parameterisation=kind, stance_from_relations=True, mood_from_baseline=True)
        with torch.no_grad():
            around = model(x, sigma, cond)
            model.config = replace(model.config, stance_from_relations=False, mood_from_baseline=False)
            assert torch.allclose(around, base + model(x - base, sigma, cond), atol=1e-6), kind


def test_an_older_network_switched_to_the_base_starts_with_stance_and_mood_on_it():
    from storydiff.denoiser import scene_base

    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(width=32, depth=1, heads=2, parameterisation="x", stance_from_relations=False,
                                    mood_from_baseline=False))
    cond, x = _informed_condition(2), torch.randn(2, C, T, 47 + 3 * 16)
    with torch.no_grad():
        before = model(x, torch.tensor([0.5, 5.0]), cond)
    model.start_stance_from_relations()
    model.start_mood_from_baseline()
    assert model.config.stance_from_relations and model.config.mood_from_baseline
    with torch.no_grad():
        out = model(x, torch.tensor([0.5, 5.0]), cond)
    assert torch.equal(out[..., 44:], scene_base(cond, x.shape, model.config)[..., 44:])
    assert not torch.allclose(before[..., 44:47], out[..., 44:47])


def test_a_config_from_before_the_base_loads_without_it_and_training_switches_each_part_on(tmp_path):
    import json

    from storydiff.checkpoint import load_checkpoint, save_checkpoint
    from storydiff.train import make_trainer

    path = save_checkpoint(Denoiser(DenoiserConfig(width=32, depth=1, heads=2)), tmp_path / "old.safetensors")
    assert load_checkpoint(path)[0].config.stance_from_relations
    meta_file = path.with_suffix(".json")
    meta = json.loads(meta_file.read_text())
    del meta["config"]["stance_from_relations"], meta["config"]["mood_from_baseline"]
    meta_file.write_text(json.dumps(meta))
    old, _ = load_checkpoint(path)
    assert not old.config.stance_from_relations and not old.config.mood_from_baseline  # it predicted them outright
    assert old.config.trained_beats is None and old.config.window_beats == old.config.max_beats
    opts = TrainOptions(steps=1, batch_size=2, log_every=10**9, save_every=10**9)
    text_only = make_trainer([], opts, torch.device("cpu"), init=path, shards=[tiny_shard(2)])
    assert not text_only.model.config.stance_from_relations  # nothing to learn them from (`storydiff learn`)
    assert not text_only.model.config.mood_from_baseline
    assert text_only.model.config.trained_beats == int(tiny_shard(2).extents[1].max())  # windows beyond it
    shard = tiny_shard(2)
    related = replace(tiny_condition(2), relations=_informed_condition(2).relations)
    switched = make_trainer([], opts, torch.device("cpu"), init=path, shards=[Shard(shard.x, shard.mask, related)])
    assert switched.model.config.stance_from_relations and not switched.model.config.mood_from_baseline
    assert switched.model.net.pair_out[-1].weight.abs().sum() == 0
    moods = replace(tiny_condition(2), mood=_informed_condition(2).mood)
    switched = make_trainer([], opts, torch.device("cpu"), init=path, shards=[Shard(shard.x, shard.mask, moods)])
    assert switched.model.config.mood_from_baseline and not switched.model.config.stance_from_relations
    assert switched.model.net.token_out.weight[44:47].abs().sum() == 0
