"""The draft file: what `storydiff tui DRAFT` reopens exactly, written atomically after every step.

One JSON document: where the situation (or story) is, the sampler settings, the
writer's pins and edits, the story's finished scenes, and the current step's
tensors (with the step a revision would start from) as one base64 safetensors
blob, so resuming a reopened draft gives the same scene bit for bit. A few tens
of kilobytes: small enough to rewrite after every step.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from storydiff.engine import Engine
from storydiff.fileio import write_atomic
from storydiff.loader import bundled_library
from storydiff.models import Pin
from storydiff.projection import ProjectionInfo, ProjectionState
from storydiff.sampling import Step
from storydiff.scene import Scene

from .session import REVISE_FROM, Drafted, Edit, Session, Trace
from .sources import Opened, is_bundled

FORMAT = "storydiff-draft"
VERSION = 1
_STEP_TENSORS = ("x_t", "x0_hat", "projected", "distance", "rng_state")


class DraftError(ValueError):
    """A draft file that cannot be read back; the message names the file and what is wrong."""


@dataclass(kw_only=True)
class Draft(Drafted):
    """A draft as read from disk, before its source files are loaded."""

    source: Path
    characters: str | None


def default_path(source: Path, name: str) -> Path:
    """`storm.draft.json` next to the situation, or in the working folder for the bundled examples."""
    folder = Path.cwd() if is_bundled(source) else source.parent
    return folder / f"{name}.draft.json"


def next_path(path: Path) -> Path:
    """`storm-2.draft.json` after `storm.draft.json`, `storm-3…` after that."""
    stem, _, rest = path.name.partition(".")
    base, _, number = stem.rpartition("-")
    if base and number.isdigit():
        return path.with_name(f"{base}-{int(number) + 1}.{rest}")
    return path.with_name(f"{stem}-2.{rest}")


def _source_entry(source: Path, draft_path: Path) -> dict:
    if is_bundled(source):
        return {"bundled": source.resolve().relative_to(bundled_library().resolve()).as_posix()}
    try:
        return {"path": source.resolve().relative_to(draft_path.resolve().parent).as_posix()}
    except ValueError:
        return {"path": str(source.resolve())}


def _kept_steps(session: Session) -> list[Step]:
    """The current step and, when still in memory, the step a revision would start from."""
    if not session.history:
        return []
    target = max(0, int(session.steps * REVISE_FROM) - 1)
    revise = [s for s in session.history if s.index <= target][-1:]
    return list({id(s): s for s in [*revise, session.history[-1]]}.values())


def _carry_tensors(carry: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {}
    for key, value in carry.items():
        if isinstance(value, ProjectionInfo):
            value = value.state
        if isinstance(value, ProjectionState):
            tensors[f"{key}.y"] = value.y
            for i, (dual, rho) in enumerate(zip(value.duals, value.rhos, strict=True)):
                tensors.update({f"{key}.dual.{i}": dual, f"{key}.rho.{i}": rho})
            meta[key] = {"kind": "projection", "shape": list(value.shape), "parts": len(value.duals)}
        elif isinstance(value, torch.Tensor):
            tensors[key] = value
            meta[key] = {"kind": "tensor"}
    return tensors, meta


def dumps(session: Session, path: Path) -> str:
    """The draft as JSON text (tensors as one base64 safetensors blob)."""
    tensors: dict[str, torch.Tensor] = {}
    steps = []
    for k, step in enumerate(_kept_steps(session)):
        tensors.update({f"{k}.{t}": getattr(step, t) for t in _STEP_TENSORS})
        carried, carry_meta = _carry_tensors(step.carry)
        tensors.update({f"{k}.carry.{name}": t for name, t in carried.items()})
        steps.append({"index": step.index, "sigma": step.sigma, "sigma_next": step.sigma_next,
                      "binding": step.binding, "carry": carry_meta})
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    blob = save_tensors(tensors) if tensors else b""
    doc = {
        "format": FORMAT, "version": VERSION,
        "source": _source_entry(session.opened.path, path),
        "characters": session.opened.explicit_characters,
        "seed": session.seed, "steps": session.steps, "sampler": session.sampler,
        "guidance": session.guidance,
        "part": session.part,
        "pins": [p.model_dump(include={"var", "min", "max", "equal"}, exclude_none=True)
                 for p in session.pins],
        "pinned_at": session.pinned_at,
        "edits": [{"var": e.var, "value": e.value, "at": e.at} for e in session.edits],
        "previous": session.previous,
        "done": [s.model_dump(mode="json") for s in session.done],
        "trace": [[t.index, t.sigma, t.distance] for t in session.trace],
        "history": steps,
        "tensors": base64.b64encode(blob).decode("ascii"),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def save(session: Session, path: str | Path) -> Path:
    """Write the draft atomically: a crash mid-write leaves the previous draft intact."""
    path = Path(path)
    return write_atomic(path, dumps(session, path))


def _carry(k: int, meta: dict, tensors: dict[str, torch.Tensor]) -> dict:
    carry = {}
    for key, info in meta.items():
        if info["kind"] == "projection":
            name = f"{k}.carry.{key}"
            if "parts" in info:
                duals = [tensors[f"{name}.dual.{i}"] for i in range(info["parts"])]
                rhos = [tensors[f"{name}.rho.{i}"] for i in range(info["parts"])]
            else:  # drafts saved before the projection split its problem: one part, the whole
                duals, rhos = [tensors[f"{name}.dual"]], [tensors[f"{name}.rho"]]
            carry[key] = ProjectionState(tensors[f"{name}.y"], duals, rhos, tuple(info["shape"]))
        else:
            carry[key] = tensors[f"{k}.carry.{key}"]
    return carry


def _source_path(entry: dict, draft_path: Path) -> Path:
    if "bundled" in entry:
        return bundled_library() / entry["bundled"]
    source = Path(entry["path"])
    return source if source.is_absolute() else draft_path.resolve().parent / source


def load(path: str | Path) -> Draft:
    """Read a draft; DraftError names the file and the problem (the file is never modified)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise DraftError(f"{path}: not a storydiff draft (no \"format\": \"{FORMAT}\")")
        if doc.get("version") != VERSION:
            raise DraftError(f"{path}: draft version {doc.get('version')} is not supported "
                             f"(expected {VERSION})")
        blob = base64.b64decode(doc["tensors"])
        tensors = load_tensors(blob) if blob else {}
        history = [Step(s["index"], s["sigma"], s["sigma_next"],
                        *(tensors[f"{k}.{t}"] for t in _STEP_TENSORS[:4]),
                        s["binding"], tensors[f"{k}.rng_state"], _carry(k, s["carry"], tensors))
                   for k, s in enumerate(doc["history"])]
        return Draft(
            source=_source_path(doc["source"], path), characters=doc.get("characters"),
            seed=int(doc["seed"]), steps=int(doc["steps"]), sampler=doc["sampler"],
            guidance=float(doc["guidance"]),
            part=int(doc.get("part", 0)), pins=[Pin(**p) for p in doc["pins"]],
            pinned_at={str(var): int(at) for var, at in doc.get("pinned_at", {}).items()},
            edits=[Edit(e["var"], float(e["value"]), int(e["at"])) for e in doc["edits"]],
            done=[Scene.model_validate(s) for s in doc.get("done", [])], previous=doc.get("previous"),
            history=history, trace=[Trace(int(i), float(s), float(d)) for i, s, d in doc.get("trace", [])])
    except DraftError:
        raise
    except json.JSONDecodeError as e:
        raise DraftError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, SafetensorError) as e:
        raise DraftError(f"{path}: damaged draft ({type(e).__name__}: {e})") from None


def restore(engine: Engine, draft: Draft, opened: Opened) -> Session:
    """A session continuing a draft; raises StorydiffError when its pins no longer fit the files.

    When the files changed shape since (other cast, other beats), the saved step cannot
    continue: the scene starts again from noise with the same seed and pins.
    """
    part = min(draft.part, len(opened.situations) - 1)
    session = Session(engine, opened, seed=draft.seed, steps=draft.steps, sampler=draft.sampler,
                      guidance=draft.guidance, part=part, pins=list(draft.pins), done=list(draft.done[:part]),
                      previous=draft.previous if part else None)
    known = set(session.run.layout.names)
    session.edits = [e for e in draft.edits if e.var in known]
    session.pinned_at = {p.var: draft.pinned_at.get(p.var, -1) for p in session.pins}
    fits = all(tuple(s.x_t.shape[1:]) == session.run.layout.shape for s in draft.history)
    if fits and draft.history and draft.history[-1].index < session.steps:
        session.history, session.trace = list(draft.history), list(draft.trace)
    else:
        session.edits = [Edit(e.var, e.value, -1) for e in session.edits]
        session.pinned_at = dict.fromkeys(session.pinned_at, -1)
    return session
