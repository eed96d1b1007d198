"""The draft being worked on, without any widgets: the run, the steps so far, pins, edits, undo and redo.

Every change a writer makes (a pin, an edit, a resample, new steps or guidance) is
recorded as a snapshot of the draft before it, so undo and redo restore exactly
what was on screen, trajectory included. Denoising always continues from the
latest step with `Engine.denoise(run, resume=step, edits=...)`, so pausing, pinning
and reopening a saved draft all continue exactly as an uninterrupted run would.
A pin or an edit made since the latest step shows at once: the scene on screen is
that step's estimate with the change written in (the sampler is not touched by it).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from storydiff.engine import Engine, Run, carry_over
from storydiff.errors import StorydiffError
from storydiff.models import Pin, Situation
from storydiff.sampling import Step
from storydiff.scene import Scene

from .sources import Opened

# A finished scene is revised from this share of its steps: late enough to keep its broad shape,
# early enough that the denoiser (not only the projection) answers a new pin.
REVISE_FROM = 0.5


@dataclass(frozen=True)
class Edit:
    """A value written into the scene once, not a constraint; `at`: the step it was made after (-1: start)."""

    var: str
    value: float
    at: int


@dataclass(frozen=True)
class Trace:
    """What the distance plot needs of one step."""

    index: int
    sigma: float
    distance: float


@dataclass(frozen=True)
class Snapshot:
    """Everything undo and redo restore."""

    pins: tuple[Pin, ...]
    pinned_at: tuple[tuple[str, int], ...]
    edits: tuple[Edit, ...]
    seed: int
    steps: int
    guidance: float
    history: tuple[Step, ...]
    trace: tuple[Trace, ...]


@dataclass(kw_only=True)
class Drafted:
    """What a draft file keeps of a session: its settings, the writer's changes and the steps so far."""

    seed: int = 0
    steps: int = 12
    sampler: str = "heun"
    guidance: float = 1.0
    part: int = 0
    pins: list[Pin] = field(default_factory=list)
    # the step index each of the writer's pins was made after (-1: start), as `Edit.at` for edits
    pinned_at: dict[str, int] = field(default_factory=dict)
    edits: list[Edit] = field(default_factory=list)
    done: list[Scene] = field(default_factory=list)
    previous: dict[str, float] | None = None
    history: list[Step] = field(default_factory=list)
    trace: list[Trace] = field(default_factory=list)


@dataclass
class Session(Drafted):
    """One scene of a situation or story being drafted; `history[-1]` is the current step."""

    engine: Engine
    opened: Opened
    undo_stack: list[Snapshot] = field(default_factory=list)
    redo_stack: list[Snapshot] = field(default_factory=list)
    run: Run | None = None
    _scene: tuple[Step, Run, tuple[dict[str, float], list[Pin]], Scene] | None = field(
        default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.run is None:
            self.run = self.prepare()

    # ------------------------------------------------------------ what is on screen

    @property
    def situation(self) -> Situation:
        return self.opened.situations[self.part]

    @property
    def step(self) -> Step | None:
        return self.history[-1] if self.history else None

    @property
    def finished(self) -> bool:
        return self.step is not None and self.step.last

    @property
    def story_has_next(self) -> bool:
        return self.part + 1 < len(self.opened.situations)

    def pending(self) -> tuple[dict[str, float], list[Pin]]:
        """The edits and pins made since the current step: no step has answered them yet."""
        at = self.step.index if self.step else -1
        return ({e.var: e.value for e in self.edits if e.at == at},
                [p for p in self.pins if self.pinned_at.get(p.var) == at])

    def scene(self) -> Scene | None:
        """The current step's projected estimate as a scene (the sampled scene once finished).

        Pending edits and pins are written into it, so the writer sees a change when making it,
        not one step later; a story's scene carries the story's provenance, as the CLI gives it.
        A scene no CLI call repeats is marked drafted (`drafted`).
        """
        step = self.step
        if step is None:
            return None
        pending = self.pending()
        cached = self._scene
        if cached is None or cached[0] is not step or cached[1] is not self.run or cached[2] != pending:
            edits, pins = pending
            shown = dataclasses.replace(step, projected=_write(step.projected, edits, self.run, pins))
            scene = self.engine.scenes(self.run, shown)[0]
            story = {"story": self.opened.story.id, "part": self.part, "seed": self.seed} if self.opened.story else {}
            scene.provenance = scene.provenance.model_copy(update={**story, "drafted": self.drafted})
            self._scene = (step, self.run, pending, scene)
        return self._scene[3]

    @property
    def drafted(self) -> bool:
        """Whether the writer's hand shaped the scene beyond what the CLI can be told: pins or edits,
        a story whose scenes were sampled with different story seeds (a scene resampled after the
        ones before it), or a scene after one that was itself drafted."""
        if self.pins or self.edits:
            return True
        return any(s.provenance.drafted or s.provenance.seed != self.seed for s in self.done)

    def pins_on(self, character: str, beat: int) -> list[Pin]:
        """The writer's pins on one cell."""
        return [p for p in self.pins if _on(p.var, character, beat)]

    def edits_on(self, character: str, beat: int) -> list[Edit]:
        """The writer's edits on one cell."""
        return [e for e in self.edits if _on(e.var, character, beat)]

    def scenes(self) -> list[Scene]:
        """The story's finished scenes and the current one: what export writes."""
        current = self.scene()
        return [*self.done, *([current] if current else [])]

    # ------------------------------------------------------------ denoising

    def prepare(self, pins: list[Pin] | None = None, seed: int | None = None, steps: int | None = None,
                guidance: float | None = None, situation: Situation | None = None) -> Run:
        """A run for the current settings with changes; raises StorydiffError naming conflicting rows."""
        situation = situation or self.situation
        return self.engine.prepare(
            situation, cast=self.opened.cast, seed=(self.seed if seed is None else seed) + self.part,
            steps=self.steps if steps is None else steps, sampler=self.sampler,
            guidance=self.guidance if guidance is None else guidance,
            pins=list(self.pins if pins is None else pins), previous=self.previous)

    def iterator(self) -> Iterator[Step] | None:
        """Steps from the current one on; None when the scene is finished.

        Edits already applied along this trajectory stay held (the engine inpaints them)
        without being shifted in again: the resume step's estimate already carries them.
        """
        if self.finished:
            return None
        step = self.step
        held = {e.var: e.value for e in self.edits}
        if step is None:
            return self.engine.denoise(self.run, edits=held)
        fresh, _ = self.pending()
        settled = {name: value for name, value in held.items() if name not in fresh}
        base = dataclasses.replace(step, projected=_write(step.projected, settled, self.run))
        return self.engine.denoise(self.run, resume=base, edits=held)

    def accept(self, step: Step) -> None:
        self.history.append(step)
        self.trace.append(Trace(step.index, step.sigma, float(step.distance[0])))

    # ------------------------------------------------------------ changes (undoable)

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self.pins), tuple(self.pinned_at.items()), tuple(self.edits), self.seed,
                        self.steps, self.guidance, tuple(self.history), tuple(self.trace))

    def _restore(self, snap: Snapshot) -> None:
        self.pins, self.pinned_at, self.edits = list(snap.pins), dict(snap.pinned_at), list(snap.edits)
        self.seed, self.steps, self.guidance = snap.seed, snap.steps, snap.guidance
        self.history, self.trace = list(snap.history), list(snap.trace)
        self.run = self.prepare()

    def _record(self) -> None:
        self.undo_stack.append(self.snapshot())
        self.redo_stack.clear()

    def _revise_point(self) -> None:
        """On a finished scene, go back to the step a revision starts from."""
        if not self.finished:
            return
        target = max(0, int(self.steps * REVISE_FROM) - 1)
        kept = [s for s in self.history if s.index <= target]
        self.history = kept[-1:] if kept else []
        last = self.history[-1].index if self.history else -1
        self.trace = [t for t in self.trace if t.index <= last]

    def pin(self, pin: Pin) -> None:
        """Add (or replace) a pin; refused, with nothing changed, when the scene becomes infeasible."""
        pins = [p for p in self.pins if p.var != pin.var] + [pin]
        run = self.prepare(pins=pins)
        self._record()
        self.pins, self.run = pins, run
        self._revise_point()
        self.pinned_at = {**self.pinned_at, pin.var: self.step.index if self.step else -1}

    def edit(self, var: str, value: float) -> None:
        """Write a value into the scene from the current step on (the model and projection may move it)."""
        self.run.layout.index(var)
        self._record()
        self._revise_point()
        at = self.step.index if self.step else -1
        self.edits = [e for e in self.edits if e.var != var] + [Edit(var, float(value), at)]

    def unpin(self, *variables: str) -> None:
        """Remove pins (one undoable change)."""
        pins = [p for p in self.pins if p.var not in variables]
        run = self.prepare(pins=pins)
        self._record()
        self.pins, self.run = pins, run
        self.pinned_at = {var: at for var, at in self.pinned_at.items() if var not in variables}

    def restart(self, seed: int | None = None, steps: int | None = None,
                guidance: float | None = None) -> None:
        """Start the scene again from noise with a new seed, step count or guidance; edits stay held."""
        run = self.prepare(seed=seed, steps=steps, guidance=guidance)
        self._record()
        self.seed = self.seed if seed is None else seed
        self.steps = self.steps if steps is None else steps
        self.guidance = self.guidance if guidance is None else guidance
        self.run, self.history, self.trace = run, [], []
        self.edits = [dataclasses.replace(e, at=-1) for e in self.edits]
        self.pinned_at = dict.fromkeys(self.pinned_at, -1)

    def undo(self) -> bool:
        if not self.undo_stack:
            return False
        self.redo_stack.append(self.snapshot())
        self._restore(self.undo_stack.pop())
        return True

    def redo(self) -> bool:
        if not self.redo_stack:
            return False
        self.undo_stack.append(self.snapshot())
        self._restore(self.redo_stack.pop())
        return True

    # ------------------------------------------------------------ files

    def reload(self, opened: Opened) -> None:
        """Use freshly loaded files; keep the trajectory when the scene's shape is unchanged."""
        situation = opened.situations[min(self.part, len(opened.situations) - 1)]
        run = self.prepare(situation=situation)
        self.opened, self.part = opened, min(self.part, len(opened.situations) - 1)
        same_shape = run.layout.names == self.run.layout.names
        self.run = run
        if not same_shape:
            self.history, self.trace, self.edits = [], [], []
            self.pinned_at = dict.fromkeys(self.pinned_at, -1)
            self.undo_stack.clear()
            self.redo_stack.clear()
        else:
            self._revise_point()

    def next_part(self) -> None:
        """Move on to the story's next scene, starting from where this one ended."""
        scene = self.scene()
        if not (self.finished and self.story_has_next and scene):
            raise ValueError("finish this scene first" if self.story_has_next
                             else "this is the story's last scene")
        before = self.part, self.previous
        self.part, self.previous = self.part + 1, carry_over(scene, self.opened.carry(self.part + 1)) or None
        try:
            run = self.prepare(pins=[])
        except StorydiffError as e:
            self.part, self.previous = before
            raise StorydiffError(f"scene {self.part + 2} cannot start where this one ended (the scenes can follow "
                                 f"one another, this sample cannot): resample (r) or edit this scene. {e}") from e
        self.done.append(scene)
        self.pins, self.edits, self.history, self.trace, self.pinned_at = [], [], [], [], {}
        self.undo_stack.clear()
        self.redo_stack.clear()
        self.run = run


def _on(var: str, character: str, beat: int) -> bool:
    return var.startswith(f"{character}.") and var.endswith(f"@{beat}")


def _write(x: torch.Tensor, values: dict[str, float], run: Run, pins: list[Pin] | None = None) -> torch.Tensor:
    """A copy of a `[batch, characters, beats, features]` state with the named variables set
    and pinned ones moved to the nearest value their pins allow."""
    if not values and not pins:
        return x
    flat = x.reshape(x.shape[0], -1).clone()
    for name, value in values.items():
        flat[:, int(run.layout.positions[run.layout.index(name)])] = value
    for pin in pins or []:
        at = int(run.layout.positions[run.layout.index(pin.var)])
        flat[:, at] = flat[:, at].clamp(*pin.bounds)
    return flat.reshape(x.shape)
