"""Corpus shards: one safetensors file of scenes, observed-variable masks and conditions.

`x` is `[K, C, T, F]`, `mask` marks the observed variables (what the loss sees) and every
SceneCondition field is stored as `cond.<field>` — what `storydiff corpus` and the real-text
builder both write and the trainer reads.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import torch

from .conditioning import EVENT_FEATURES, SceneCondition
from .errors import StorydiffError
from .fileio import write_atomic
from .limits import LIMIT_FEATURES
from .vocab import PAD


@dataclass
class Shard:
    x: torch.Tensor
    mask: torch.Tensor
    cond: SceneCondition
    weight: float = 1.0  # the trainer draws from a shard in proportion to its size times this

    def __len__(self) -> int:
        return self.x.shape[0]

    @cached_property
    def extents(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`[K]` character slots and `[K]` beats each scene spans: its last real one, plus one."""
        def span(real: torch.Tensor) -> torch.Tensor:
            return (real * torch.arange(1, real.shape[1] + 1)).amax(1).long()

        observed = self.mask.flatten(3).any(-1)  # [K, C, T]
        return (span(((self.cond.characters > 0) | observed.any(2)).float()),
                span(((self.cond.beats > 0) | observed.any(1)).float()))

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, SceneCondition]:
        """Scenes `index`, padded only as far as the largest of them: the network's cost grows with
        characters² × beats, and padding changes nothing it computes for the real ones."""
        characters, beats = (int(e[index].max()) for e in self.extents)
        cond = self.cond.cropped(characters, beats).select(index)  # crop views first: only the batch is copied
        x, mask = self.x[index, :characters, :beats], self.mask[index, :characters, :beats]
        return x.to(device), mask.to(device, torch.float32), cond.to(device)


def load_shard(path: Path | str) -> Shard:
    """Read one shard; a file that is not one is a StorydiffError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        t = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise StorydiffError(f"{path}: not a corpus shard ({exc}); pass a folder written by "
                             "`storydiff corpus` or one of its .safetensors files") from None
    if "cond.from_text" not in t and "cond.trait_mask" in t:
        t["cond.from_text"] = _infer_from_text(t)
    if "cond.mood" not in t and "cond.traits" in t:  # written before baseline moods were stored: none known
        t["cond.mood"] = torch.zeros(*t["cond.traits"].shape[:2], len(PAD))
    if "cond.limits" not in t and "cond.events" in t:  # written before limits were stored: none known
        t["cond.limits"] = torch.zeros(*t["cond.events"].shape[:3], LIMIT_FEATURES)
    if "cond.limits" in t and t["cond.limits"].shape[-1] != LIMIT_FEATURES:
        raise StorydiffError(f"{path}: its limits have {t['cond.limits'].shape[-1]} features, this storydiff reads "
                             f"{LIMIT_FEATURES}; generate it again with `storydiff corpus`")
    names = ["x", "mask", *(f"cond.{f.name}" for f in fields(SceneCondition))]
    missing = [n for n in names if n not in t]
    if missing:
        raise StorydiffError(f"{path}: not a corpus shard (no {missing[0]!r} tensor); pass a folder written by "
                             "`storydiff corpus` or one of its .safetensors files")
    t["cond.events"] = _upgrade_events(path, t["cond.events"], t["cond.event_mask"])
    cond = SceneCondition(**{f.name: t[f"cond.{f.name}"].float() for f in fields(SceneCondition)})
    return Shard(t["x"].float(), t["mask"].bool(), cond)


def _upgrade_events(path: Path | str, events: torch.Tensor, event_mask: torch.Tensor) -> torch.Tensor:
    """Events of a shard written before whose act an event was became a feature (`EVENT_FEATURES`).

    Real-text windows have no events, so zeros are exact for them; simulated scenes had events
    whose agents the shard did not keep, so those must be generated again.
    """
    missing = len(EVENT_FEATURES) - events.shape[-1]
    if missing <= 0:
        return events
    if bool(event_mask.any()):
        raise StorydiffError(f"{path}: written by an earlier storydiff ({events.shape[-1]} event features, "
                             f"this one reads {len(EVENT_FEATURES)}); generate it again with `storydiff corpus`")
    return torch.nn.functional.pad(events, (0, missing))


def _infer_from_text(t: dict[str, torch.Tensor]) -> torch.Tensor:
    """`[K, 1]` source flag for shards written before it was stored.

    Exact for both writers: simulated scenes always carry traits and events (they are only
    dropped at training time), real-text windows never do.
    """
    known = t["cond.trait_mask"].sum(dim=1) + t["cond.event_mask"].sum(dim=1)
    return (known == 0).float().unsqueeze(1)


def save_shard(path: Path | str, x: torch.Tensor, mask: torch.Tensor, cond: SceneCondition) -> None:
    """Write a shard atomically, as checkpoints are: an interrupted write leaves no half shard."""
    from safetensors.torch import save

    tensors = {"x": x.float().contiguous(), "mask": mask.to(torch.uint8).contiguous()}
    tensors |= {f"cond.{f.name}": getattr(cond, f.name).float().contiguous() for f in fields(SceneCondition)}
    write_atomic(path, save(tensors))


def shard_files(specs: Iterable[Path | str]) -> list[tuple[Path, float]]:
    """Shards named directly, or every `*.safetensors` in the given folders, each with its draw weight.

    `PATH@N` (e.g. `plays/@10`) draws from PATH's shards N times as often as their size alone would:
    how a small real-text corpus keeps its say beside large simulated ones.
    """
    out: list[tuple[Path, float]] = []
    for spec in map(str, specs):
        path, weight = spec, 1.0
        head, at, given = spec.rpartition("@")
        if at and not Path(spec).exists():  # an '@' in the name of a file or folder is no weight
            try:
                path, weight = head, float(given)
            except ValueError:
                weight = math.nan
            if not (math.isfinite(weight) and weight > 0):
                raise StorydiffError(f"{spec}: the weight after '@' must be a positive number, as in corpus/@10")
        p = Path(path)
        out += [(f, weight) for f in sorted(p.glob("*.safetensors"))] if p.is_dir() else [(p, weight)]
    return out
