"""The constraint set's limits on each value, as the denoiser reads them."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_denoiser import tiny_condition

from storydiff.constraints import compile_constraints
from storydiff.corpus import write_corpus
from storydiff.errors import StorydiffError
from storydiff.layout import MOOD, SHOWN, StateLayout
from storydiff.limits import TOKEN_VALUES, column_bounds, variable_limits
from storydiff.loader import load_characters, load_situation
from storydiff.models import Pin
from storydiff.polytope import Polytope
from storydiff.shards import load_shard
from storydiff.train import drop_conditions
from storydiff.vocab import OCC_EMOTIONS, PAD

ROOT = Path(__file__).resolve().parents[1]
FELT_OF = {e: k for k, e in enumerate(OCC_EMOTIONS)}


def _limits(situation_name: str, pins: list[Pin] | None = None) -> tuple[torch.Tensor, list[str]]:
    cast = load_characters(ROOT / "characters")
    situation = load_situation(ROOT / "characters" / "situations" / f"{situation_name}.situation.xml", cast)
    if pins:
        situation = situation.model_copy(update={"pins": pins})
    layout = StateLayout(situation.cast, situation.beats)
    return variable_limits(compile_constraints(cast, situation, layout=layout), layout), list(situation.cast)


def test_ranges_and_never_cut_a_felt_value_from_the_top_at_every_beat_and_leave_the_rest_free():
    limits, cast = _limits("commissioners-rooms")
    dray = cast.index("dray")  # dray.character.xml: pity never, joy max 0.5, shame max 0.3
    top = limits[dray, :, :TOKEN_VALUES]
    assert torch.all(top[:, FELT_OF["pity"]] == 1.0)
    assert torch.allclose(top[:, FELT_OF["joy"]], torch.full((limits.shape[1],), 0.5))
    assert torch.allclose(top[:, FELT_OF["shame"]], torch.full((limits.shape[1],), 0.7))
    assert torch.all(top[:, FELT_OF["anger"]] == 0.0)
    bottom = limits[dray, :, TOKEN_VALUES:]
    assert not bool(bottom[:, [FELT_OF["pity"], FELT_OF["joy"], FELT_OF["shame"]]].any())  # a max is no min


def test_a_pin_cuts_only_its_own_beat_and_mood_is_measured_on_its_own_range():
    pins = [Pin(var="dray.mood.pleasure@3", equal=0.5), Pin(var="dray.felt.anger@2", min=0.25)]
    limits, cast = _limits("commissioners-rooms", pins)
    dray, pleasure = cast.index("dray"), MOOD.start + PAD.index("pleasure")
    top, bottom = limits[dray, :, :TOKEN_VALUES], limits[dray, :, TOKEN_VALUES:]
    assert torch.allclose(top[2, pleasure], torch.tensor(0.25))     # 1 − 0.5 of a range of 2
    assert torch.allclose(bottom[2, pleasure], torch.tensor(0.75))  # 0.5 − (−1) of 2
    assert top[1, pleasure] == 0 and bottom[3, pleasure] == 0
    assert torch.allclose(bottom[1, FELT_OF["anger"]], torch.tensor(0.25)) and bottom[0, FELT_OF["anger"]] == 0


def test_one_variable_rows_with_negative_or_scaled_coefficients_bound_their_column():
    A = torch.tensor([[-2.0, 0.0], [0.0, 4.0], [1.0, 1.0]], dtype=torch.float64).to_sparse_csr()
    inf = float("inf")
    polytope = Polytope(A=A, lower=torch.tensor([-1.0, -inf, 0.0], dtype=torch.float64),
                        upper=torch.tensor([-0.4, 2.0, 0.5], dtype=torch.float64),
                        names=["a", "b", "sum"], columns=["x", "y"])
    lower, upper = column_bounds(polytope)  # −2x ∈ [−1, −0.4] → x ∈ [0.2, 0.5]; 4y ≤ 2 → y ≤ 0.5; the sum is ignored
    assert torch.allclose(lower, torch.tensor([0.2, -inf], dtype=torch.float64))
    assert torch.allclose(upper, torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_corpora_store_limits_the_scenes_obey_and_older_shards_load_without_any(tmp_path):
    write_corpus(8, tmp_path / "corpus", seed=3)
    path = next((tmp_path / "corpus").glob("*.safetensors"))
    shard = load_shard(path)
    limits, x = shard.cond.limits, shard.x[..., :TOKEN_VALUES]
    assert bool((limits > 0).any())
    cap = 1.0 - limits[..., :SHOWN.stop]  # felt and shown live in [0, 1]: the cap is 1 − the cut
    assert float((x[..., :SHOWN.stop] - cap).max()) <= 1e-5
    floor = limits[..., TOKEN_VALUES:TOKEN_VALUES + SHOWN.stop]
    assert float((floor - x[..., :SHOWN.stop]).max()) <= 1e-5

    tensors = load_file(str(path))
    del tensors["cond.limits"]
    save_file(tensors, str(tmp_path / "old.safetensors"))
    old = load_shard(tmp_path / "old.safetensors")
    assert old.cond.limits.shape == limits.shape and not bool(old.cond.limits.any())

    tensors["cond.limits"] = torch.zeros(*limits.shape[:-1], 10)
    save_file(tensors, str(tmp_path / "odd.safetensors"))
    with pytest.raises(StorydiffError, match=r"odd\.safetensors: its limits have 10 features"):
        load_shard(tmp_path / "odd.safetensors")


def test_the_null_condition_and_condition_dropout_forget_the_limits():
    cond = tiny_condition(64)
    cond.limits.uniform_()
    assert not bool(cond.null().limits.any())
    dropped = drop_conditions(cond, 0.5, torch.Generator().manual_seed(0))
    gone = dropped.trait_mask[:, 0] == 0
    assert 0 < int(gone.sum()) < 64
    assert not bool(dropped.limits[gone].any()) and torch.equal(dropped.limits[~gone], cond.limits[~gone])
    assert not bool(dropped.relations[gone].any())


def test_the_engine_tells_the_network_the_limits_of_the_scene_it_samples(engine):
    cast = load_characters(ROOT / "characters")
    situation = load_situation(ROOT / "characters" / "situations" / "commissioners-rooms.situation.xml", cast)
    pinned = [Pin(var="dray.felt.anger@2", min=0.25)]
    run = engine.prepare(situation, cast=cast, n=2, pins=pinned)
    dray = list(situation.cast).index("dray")
    limits = run.condition.limits.cpu()
    assert limits.shape == (2, len(situation.cast), situation.beats, 2 * TOKEN_VALUES)
    assert torch.all(limits[:, dray, :, FELT_OF["pity"]] == 1.0)  # never pity, at every beat of both samples
    assert torch.allclose(limits[:, dray, 1, TOKEN_VALUES + FELT_OF["anger"]], torch.tensor(0.25))  # the pin
    unpinned = engine.condition(cast, situation).limits  # compiled by the engine itself: the same, bar the pin
    assert unpinned[dray, 1, TOKEN_VALUES + FELT_OF["anger"]] == 0
    assert torch.equal(unpinned[:, :, :TOKEN_VALUES], limits[0, :, :, :TOKEN_VALUES])
