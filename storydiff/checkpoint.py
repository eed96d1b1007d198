"""Checkpoints: safetensors weights + a JSON config beside them, validated before use."""
from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from importlib import resources
from pathlib import Path

import torch

from . import __version__
from .denoiser import Denoiser, DenoiserConfig
from .errors import StorydiffError
from .fileio import write_atomic

FORMAT = "storydiff-checkpoint/1"

# Inputs appended to a layer since the first release, each zero-initialised in a new network: an
# older checkpoint gets zero weights for them and so loads as exactly the function it was trained as.
# The stance read-out gained the pair's own noisy stance, then that stance's temporal context; the
# event input gained whose act an event was; the character input gained its masks; the token input
# gained the constraint set's limits on each value.
GROWN_INPUTS = ("net.pair_out.0.weight", "net.event_in.weight", "net.character_in.weight", "net.token_in.weight")
# Settings a config written before them had, where a new network's default differs.
LEGACY_CONFIG = {"stance_from_relations": False, "mood_from_baseline": False}


def default_checkpoint() -> Path:
    """The checkpoint bundled with the package."""
    return Path(str(resources.files("storydiff.checkpoints").joinpath("default.safetensors")))


def config_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def file_hash(path: Path) -> str:
    """Short content hash: names a checkpoint in every output's provenance."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def save_checkpoint(model: Denoiser, path: Path | str, extra: dict | None = None) -> Path:
    """Write `path` (.safetensors) and its `.json` config atomically."""
    from safetensors.torch import save

    path = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, save(state))
    meta = {"format": FORMAT, "storydiff": __version__, "config": model.config.to_dict(), **(extra or {})}
    write_atomic(config_path(path), json.dumps(meta, indent=2))
    return path


def load_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> tuple[Denoiser, dict]:
    """Load and check a checkpoint; any problem is one StorydiffError naming the file and the fix."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    meta_file = config_path(path)
    if not path.is_file():
        raise StorydiffError(f"{path}: checkpoint file not found; pass the .safetensors written by `storydiff train`")
    if not meta_file.is_file():
        raise StorydiffError(f"{meta_file}: config not found beside {path.name}; put the {meta_file.name} "
                             "that `storydiff train` wrote with these weights next to them")
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        known = {f.name for f in fields(DenoiserConfig)}
        config = DenoiserConfig(**{k: v for k, v in {**LEGACY_CONFIG, **meta["config"]}.items() if k in known})
        config.check()
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StorydiffError(f"{meta_file}: not a storydiff checkpoint config ({exc}); re-run `storydiff train`")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise StorydiffError(f"{path}: corrupt checkpoint ({exc}); re-download or re-train it")
    model = Denoiser(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    state = _grow_inputs(state, expected)
    got = {k: v.shape for k, v in state.items()}
    if expected != got:
        diff = sorted(set(expected) ^ set(got)) or [k for k in expected if expected[k] != got[k]]
        raise StorydiffError(f"{path}: weights do not match its config (first mismatch: {diff[0]}); "
                             "the .json and .safetensors must come from the same training run, "
                             "of this version of storydiff's network")
    broken = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if broken is not None:
        raise StorydiffError(f"{path}: weight {broken} holds NaN or inf (a diverged training run); "
                             "train again from an earlier checkpoint or with a lower --lr")
    model.load_state_dict(state)
    meta["hash"] = file_hash(path)
    return model.to(device).eval(), meta


def _grow_inputs(state: dict[str, torch.Tensor], expected: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Zero columns for the inputs `GROWN_INPUTS` gained since `state` was saved."""
    out = dict(state)
    for name in GROWN_INPUTS:
        weight, shape = state.get(name), expected.get(name)
        if weight is not None and shape is not None and weight.shape[0] == shape[0] and weight.shape[1] < shape[1]:
            out[name] = torch.nn.functional.pad(weight, (0, shape[1] - weight.shape[1]))
    return out
