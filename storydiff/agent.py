"""Online agents for games: one live scene, its whole cast, stepped beat by beat (DESIGN §2, §8, §10).

`agent.next_beat()` samples only what is still open. The beats already played are known
values: the denoiser sees them (inpainted into every clean-scene estimate, so the sampler
moves the noisy state toward them as it would toward any pinned value), and the constraint
set treats them as constants. The rows of a window (the situation's rules over the beats
still open, plus the last played beat for the rules that span two beats) are compiled once
per window shape and cached; per beat only the bounds move, by the known part of each row
(`lower − A_fixed·y_fixed ≤ A_free·y_free ≤ upper − A_fixed·y_fixed`), so the projection
solves for the open beats alone.

The network sees a window of at most `window` beats: while the situation lasts, it runs to
the situation's last beat (so the next beat is sampled knowing what is scripted and pinned
later, and can still reach it); past that, open-ended play, it ends at the next beat and
slides, the earlier beats inpainted. Events and pins may be scheduled up to `window − 2`
beats ahead, where the window can see them.

Every call validates before it changes anything: an unknown character, an appraisal out of
range, or an event or pin that no continuation of the beats played can honour raises
`StorydiffError` (naming the conflicting rows) and leaves the agent as it was.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, Field

from . import __version__
from .conditioning import SceneCondition
from .engine import require_seed
from .errors import StorydiffError
from .fileio import write_atomic
from .layout import FELT, MOOD, SHOWN, StateLayout, parse_variable
from .models import Cast, Event, Pin, Situation
from .polytope import Polytope
from .sampling import SAMPLERS, sigmas_for
from .scene import SUBTEXT_THRESHOLD, CharacterBeat, Subtext, choose_behaviour
from .vocab import OCC_EMOTIONS, PAD, STANCE

if TYPE_CHECKING:
    from .engine import Engine

DEFAULT_WINDOW = 16
# Permenter–Yuan with 3 steps from σ = 0.2, starting at the last beat played (SDEdit, Meng et al.
# 2022), projecting the final estimate: on the agents benchmark (energy distance to simulated
# scenes, benchmarks/RESULTS.md) at or just past the edge of the default sampler's spread, at an
# eighth of its network evaluations, and closer than 4 steps under the last three priors. The
# first beat, with nothing played to start from, uses the full schedule.
AGENT_SAMPLER = "pyuan"
AGENT_STEPS = 3
AGENT_START_SIGMA = 0.2
AGENT_TOL = 1e-6
SAVE_FORMAT = "storydiff-agent/1"
# Compiled windows and step templates, shared by every agent of the same scene (same cast,
# situation and carry-over): a pool of a thousand copies of one scene compiles each window once.
_WINDOWS: OrderedDict[tuple, _Window] = OrderedDict()
_TEMPLATES: OrderedDict[tuple, _Template] = OrderedDict()
# The same lookup by what is cheap to read each beat: the window's place relative to the beat and
# the identity of the events and pins in it (agents of one situation share its event objects).
_MEMO: OrderedDict[tuple, tuple[_Template, list[Event], list[Pin]]] = OrderedDict()
_CACHE_SIZE = 256
_MEMO_SIZE = 1024
_BEATS = re.compile(r"@(\d+)(?:-(\d+))?$")


class Beat(BaseModel):
    """One played beat: every cast member's felt, shown, mood, stance and behaviour (beats from 1)."""

    beat: int
    events: list[str] = Field(default_factory=list)
    cells: list[CharacterBeat]

    def cell(self, character: str) -> CharacterBeat:
        for cell in self.cells:
            if cell.character == character:
                return cell
        present = ", ".join(c.character for c in self.cells)
        raise KeyError(f"no character {character!r} in this beat ({present})")


@dataclass
class _Window:
    """A compiled constraint window reduced to its open columns; bounds move with the known values."""

    A_free: torch.Tensor     # [rows, open columns] CSR float64
    A_fixed: torch.Tensor    # [rows, known columns] CSR float64
    lower: torch.Tensor      # [rows] before the known part is moved over
    upper: torch.Tensor
    names: list[str]         # row names, beats relative to the window (shift by `offset` to read)
    columns: list[str]
    free_pos: torch.Tensor   # open columns' positions in the flat network window [C·L·F]
    fixed_pos: torch.Tensor  # known columns' positions there


@dataclass(eq=False)
class _Template:
    """Everything about one beat of a scene that does not depend on the values played: the same for
    every beat of steady open-ended play, and for every agent of the same scene."""

    window: _Window
    condition: SceneCondition
    mask: torch.Tensor   # [characters, length, F] float, 1 where a real variable lives
    characters: int
    length: int          # beats the network sees
    known: int           # of which played (the sampled beat is the next one)


@dataclass
class _Plan:
    """What one agent contributes to one beat: its template, the beats played, noise from its own generator."""

    agent: Agent
    beat: int          # the beat being sampled, from 1
    start: int         # the network window's first beat
    template: _Template
    events: list[Event]  # the events in the network window
    known: torch.Tensor  # [C, known beats, F]
    noise: torch.Tensor  # [C, L, F], unit variance
    offset: int        # absolute beat = window-relative beat + offset
    rng: torch.Tensor  # generator state before the draw, restored if the beat fails


@dataclass(eq=False)
class Played:
    """A beat as sampled; the readable `Beat` is built the first time someone asks for it."""

    beat: int
    events: list[str]
    values: torch.Tensor  # [characters, F]
    rows: list[int]       # the rows of `window` that bind
    window: _Window | None
    offset: int
    readable: Beat | None = None


@lru_cache(maxsize=4096)
def _beat_of(var: str) -> int:
    return parse_variable(var).beat


def shift_beats(name: str, offset: int) -> str:
    """`mara.volatility.felt.joy@1-2` with offset 4 → `…@5-6`; names without a beat unchanged."""
    m = _BEATS.search(name)
    if not m or offset == 0:
        return name
    beats = str(int(m[1]) + offset) + (f"-{int(m[2]) + offset}" if m[2] else "")
    return name[: m.start()] + "@" + beats


class Agent:
    """A live scene for a game: `observe(event)`, `next_beat()`, `state`, `history`, `save()`/`load()`."""

    def __init__(self, engine: Engine, situation: Situation, *, cast: Cast | None = None, seed: int = 0,
                 window: int = DEFAULT_WINDOW, sampler: str = AGENT_SAMPLER, steps: int = AGENT_STEPS,
                 project: Literal["final", "every"] = "final", start_sigma: float | None = AGENT_START_SIGMA,
                 previous: Mapping[str, float] | None = None,
                 history_limit: int | None = None, pins: Sequence[Pin] = ()):
        cast = cast or situation.library
        if cast is None:
            raise StorydiffError(f"situation {situation.id!r} has no cast loaded; pass cast= or load it with "
                                 "storydiff.load_situation(path, cast)")
        missing = [c for c in situation.cast if c not in cast]
        if missing:
            raise StorydiffError(f"no character file for {', '.join(missing)}")
        if sampler not in SAMPLERS:
            raise StorydiffError(f"unknown sampler {sampler!r}; use one of: {', '.join(SAMPLERS)}")
        cfg = engine.model.config
        if not 2 <= window <= cfg.max_beats:
            raise StorydiffError(f"window must be 2-{cfg.max_beats} beats (this checkpoint's longest scene), "
                                 f"got {window}")
        require_seed(seed)
        if steps < 1:
            raise StorydiffError("steps must be at least 1")
        if project not in ("final", "every"):
            raise StorydiffError(f"project must be 'final' or 'every', got {project!r}")
        if start_sigma is not None and not cfg.sigma_min < start_sigma <= cfg.sigma_max:
            raise StorydiffError(f"start_sigma must lie in ({cfg.sigma_min:g}, {cfg.sigma_max:g}], "
                                 f"got {start_sigma!r}")
        if history_limit is not None and history_limit < 1:
            raise StorydiffError("history_limit must be at least 1")
        self.engine, self.cast, self.situation = engine, cast, situation.model_copy(update={"library": cast})
        self.seed, self.window, self.sampler, self.steps, self.project = seed, window, sampler, steps, project
        self.start_sigma = start_sigma
        self.history_limit = history_limit
        self.previous = dict(previous or {})
        self._layout = StateLayout(situation.cast, 1, cfg.max_characters)
        self._sigmas = sigmas_for(sampler, steps, cfg.sigma_min, cfg.sigma_max)  # from pure noise
        self._sigmas_played = (sigmas_for(sampler, steps, cfg.sigma_min, start_sigma) if start_sigma
                               else self._sigmas)
        self._generator = torch.Generator().manual_seed(seed)
        self._values = torch.zeros(len(situation.cast), 0, self._layout.features)  # [C, beats kept, F]
        self._store = self._values  # _values is its first beats; room to append without copying the rest
        self._first = 1  # absolute beat of _values[:, 0]
        self._events: list[Event] = []
        self._pins: list[Pin] = []
        self._history: list[Played] = []
        self._dropped: Beat | None = None  # the last beat trimmed from the history
        scene = [self.situation.model_dump(mode="json"),
                 {c: cast[c].model_dump(mode="json") for c in situation.cast},
                 {k: v.model_dump(mode="json") for k, v in sorted(cast.cultures.items())},
                 sorted(self.previous.items()), asdict(cfg)]  # what the network is told depends on its config
        self._scene_key = hashlib.sha256(json.dumps(scene, sort_keys=True).encode()).hexdigest()
        self._masks: dict[int, torch.Tensor] = {}
        self._check_situation()
        for pin in pins:
            self.pin(pin)

    # -- what a game reads --------------------------------------------------------------------
    @property
    def settings(self) -> tuple:
        """What agents stepped together must share: sampler, steps, projection, start σ."""
        return self.sampler, self.steps, self.project, self.start_sigma

    @property
    def cast_ids(self) -> list[str]:
        return list(self.situation.cast)

    @property
    def beat(self) -> int:
        """Beats played so far."""
        return self._first - 1 + self._values.shape[1]

    @property
    def state(self) -> dict[str, CharacterBeat]:
        """Each character's latest beat (empty before the first)."""
        return {c.character: c for c in self.readable(self._history[-1]).cells} if self._history else {}

    @property
    def history(self) -> list[Beat]:
        """The beats played (the last `history_limit` when one is set), oldest first."""
        return [self.readable(p) for p in self._history]

    @property
    def pending(self) -> list[Event]:
        """Events observed for beats not played yet."""
        return [e for e in self._events if e.beat > self.beat]

    # -- what a game does ---------------------------------------------------------------------
    def observe(self, event: Event, at: int | None = None) -> None:
        """Something happens: at the next beat, or at beat `at` (up to `window − 2` beats ahead).

        The event's own `beat` is replaced by the beat it happens at. Raises StorydiffError, and
        changes nothing, for an unknown character, a value out of range, or an event that no
        continuation of the beats played can honour.
        """
        if not isinstance(event, Event):
            raise StorydiffError(f"observe() takes a storydiff.Event, got {type(event).__name__}")
        beat = self._schedule(at, f"event {event.id!r}")
        self._check_event(event)
        event = event.model_copy(update={"beat": beat}, deep=True)
        self._check_feasible(events=[*self._events, event], pins=self._pins, what=f"event {event.id!r}")
        self._events.append(event)

    def pin(self, pin: Pin) -> None:
        """An author's keyframe on a beat not played yet, e.g. `Pin(var="mara.felt.anger@12", min=0.5)`."""
        if not isinstance(pin, Pin):
            raise StorydiffError(f"pin() takes a storydiff.Pin, got {type(pin).__name__}")
        try:
            var = parse_variable(pin.var)
        except ValueError as e:
            raise StorydiffError(str(e)) from None
        if var.character not in self.situation.cast or (var.other and var.other not in self.situation.cast):
            raise StorydiffError(f"pin {pin.var!r} names a character not in the cast "
                                 f"({', '.join(self.cast_ids)})")
        if var.other is not None and var.other == var.character:
            raise StorydiffError(f"pin {pin.var!r}: a character has no stance toward itself")
        self._schedule(var.beat, f"pin {pin.var!r}")
        lo, hi = pin.bounds
        if lo > hi:  # Pin's fields are finite numbers
            raise StorydiffError(f"pin {pin.var!r}: its lower bound {lo:g} is above its upper bound {hi:g}")
        pin = pin.model_copy(update={"var": str(var)})
        self._check_feasible(events=self._events, pins=[*self._pins, pin], what=f"pin {pin.var!r}")
        self._pins.append(pin)

    def next_beat(self) -> Beat:
        """Sample the next beat for the whole cast, given everything played and observed so far."""
        from .pool import step_agents

        return self.readable(step_agents([self])[0])

    def readable(self, played: Played) -> Beat:
        """The `Beat` of a beat this agent played (built once, on first use).

        Beats are built in order, each after the one before it, because a behaviour depends
        on the previous beat's (scene.REPEAT_PENALTY), whichever beat a game reads first.
        """
        if played.readable is None:
            history = self._history  # beats dropped from it were built on the way out
            end = next(i for i in reversed(range(len(history))) if history[i] is played)
            start = end
            while start > 0 and history[start - 1].readable is None:
                start -= 1
            before = history[start - 1].readable if start else self._dropped
            for p in history[start:end + 1]:
                p.readable = before = _beat(self, p, before)
        return played.readable

    # -- save files ---------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> bytes | Path:
        """The agent as JSON (cast, situation, beats played, events, RNG state): bytes, or a file written
        atomically."""
        data = json.dumps(self._dump(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return data if path is None else write_atomic(path, data)

    @classmethod
    def load(cls, source: bytes | str | Path, engine: Engine) -> Agent:
        """An agent from `save()`'s bytes (or their text) or file; it continues exactly where the saved one was."""
        if isinstance(source, bytes):
            raw = source
        elif isinstance(source, str) and source.lstrip().startswith("{"):  # the save's text, not a path
            raw = source.encode()
        else:
            raw = Path(source).read_bytes()
        try:
            data = json.loads(raw)
            if data.get("format") != SAVE_FORMAT:
                raise StorydiffError(f"not a storydiff agent save (format {data.get('format')!r})")
            cast = Cast.model_validate(data["cast"])
            situation = Situation.model_validate(data["situation"])
            o = data["options"]
            agent = cls(engine, situation, cast=cast, seed=o["seed"], window=o["window"],
                        sampler=o["sampler"], steps=o["steps"], project=o["project"],
                        start_sigma=o["start_sigma"], previous=data["previous"],
                        history_limit=o["history_limit"])
            agent._restore(data)
        except StorydiffError:
            raise
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise StorydiffError(f"cannot read agent save: {e}") from None
        return agent

    def _dump(self) -> dict:
        return {
            "format": SAVE_FORMAT, "storydiff": __version__, "checkpoint": self.engine.checkpoint,
            "cast": {"characters": {c: self.cast[c].model_dump(mode="json") for c in self.situation.cast},
                     "cultures": {k: v.model_dump(mode="json") for k, v in self.cast.cultures.items()
                                  if any(self.cast[c].culture == k for c in self.situation.cast)}},
            "situation": self.situation.model_dump(mode="json"),
            "options": {"seed": self.seed, "window": self.window, "sampler": self.sampler,
                        "steps": self.steps, "project": self.project, "start_sigma": self.start_sigma,
                        "history_limit": self.history_limit},
            "previous": self.previous,
            "first": self._first,
            "values": self._layout.flatten(self._values.transpose(0, 1).reshape(-1, *self._layout.shape))
                      .tolist() if self._values.shape[1] else [],
            "history": [b.model_dump(mode="json") for b in self.history],
            "events": [e.model_dump(mode="json") for e in self._events],
            "pins": [p.model_dump(mode="json") for p in self._pins],
            "rng": base64.b64encode(self._generator.get_state().numpy().tobytes()).decode("ascii"),
        }

    def _restore(self, data: dict) -> None:
        self._first = int(data["first"])
        values = torch.tensor(data["values"], dtype=torch.float32).reshape(-1, len(self._layout))
        beats = self._layout.unflatten(values) if values.shape[0] else torch.zeros(0, *self._layout.shape)
        self._values = self._store = beats[:, :, 0].transpose(0, 1).contiguous()  # [C, T, F]
        self._history, self._dropped = [], None
        for b in data["history"]:
            beat = Beat.model_validate(b)
            self._history.append(Played(beat.beat, beat.events, torch.zeros(0), [], None, 0, beat))
        self._events = [Event.model_validate(e) for e in data["events"]]
        self._pins = [Pin.model_validate(p) for p in data["pins"]]
        rng = torch.frombuffer(bytearray(base64.b64decode(data["rng"])), dtype=torch.uint8)
        self._generator.set_state(rng.clone())

    # -- validation ---------------------------------------------------------------------------
    def _check_situation(self) -> None:
        from .feasibility import require_feasible

        require_feasible(self.cast, self.situation, previous=self.previous or None)

    def _schedule(self, at: int | None, what: str) -> int:
        nxt = self.beat + 1
        if at is None:
            return nxt
        if isinstance(at, bool) or not isinstance(at, int) or not nxt <= at <= nxt + self.window - 2:
            raise StorydiffError(f"{what}: beat {at!r} is not open; the next beat is {nxt} and the window "
                                 f"sees up to beat {nxt + self.window - 2}")
        return at

    def _check_event(self, event: Event) -> None:
        cast = self.situation.cast
        for attribute in ("agent", "target"):
            name = getattr(event, attribute)
            if name is not None and name not in cast:
                raise StorydiffError(f"event {event.id!r}: {attribute} {name!r} is not in the cast "
                                     f"({', '.join(cast)})")
        seen = set()
        for a in event.appraisals:
            if a.character not in cast:
                raise StorydiffError(f"event {event.id!r}: {a.character!r} appraises it but is not in "
                                     f"the cast ({', '.join(cast)})")
            if a.character in seen:
                raise StorydiffError(f"event {event.id!r}: {a.character!r} appraises it twice")
            seen.add(a.character)
            for field, lo in (("desirability", -1), ("praiseworthiness", -1), ("appealingness", -1),
                              ("likelihood", 0)):
                v = getattr(a, field)
                if v is not None and not (lo <= v <= 1):
                    raise StorydiffError(f"event {event.id!r}: {a.character}'s {field} {v!r} "
                                         f"is outside [{lo}, 1]")

    def _check_feasible(self, events: list[Event], pins: list[Pin], what: str) -> None:
        """Raise naming the rows in conflict if no continuation of the beats played honours these."""
        from .feasibility import conflicting_rows

        start, end = self._span(self.beat + 1, events, pins)
        window, offset = self._window(self.beat + 1, end, start, events, pins)
        polytope = self._bounded(window, self._known_flat(start, end))
        rows = conflicting_rows(polytope)
        if rows:
            names = ", ".join(shift_beats(r, offset) for r in rows)
            raise StorydiffError(f"{what} cannot hold with the beats played so far; "
                                 f"these rows conflict: {names}")

    # -- one beat -----------------------------------------------------------------------------
    def _horizon(self, events: list[Event], pins: list[Pin]) -> int:
        scheduled = [e.beat for e in events] + [_beat_of(p.var) for p in pins]
        return max([self.situation.beats, *scheduled])

    def _span(self, beat: int, events: list[Event], pins: list[Pin]) -> tuple[int, int]:
        """The network window `[start, end]` for sampling `beat` (see the module docstring)."""
        horizon = self._horizon(events, pins)
        end = min(horizon, self.window) if beat == 1 else min(horizon, beat + self.window - 2)
        end = max(beat, end)
        return max(1, end - self.window + 1), end

    def _scheduled(self, lo: int, hi: int, offset: int, events: list[Event],
                   pins: list[Pin]) -> tuple[list[Event], list[Pin]]:
        """The situation's and the game's events and pins at beats lo-hi, renumbered from `offset + 1`."""
        evs = [e.model_copy(update={"beat": e.beat - offset}) for e in [*self.situation.events, *events]
               if lo <= e.beat <= hi]
        out = []
        for p in [*self.situation.pins, *pins]:
            var = parse_variable(p.var)
            if lo <= var.beat <= hi:
                out.append(p.model_copy(update={"var": str(replace(var, beat=var.beat - offset))}))
        return evs, out

    def _window(self, beat: int, end: int, start: int, events: list[Event],
                pins: list[Pin]) -> tuple[_Window, int]:
        """The cached rows for sampling `beat`..`end`, with beat − 1 known; and the beat offset."""
        from .constraints import compile_constraints

        first = max(1, beat - 1)
        offset = first - 1
        evs, pns = self._scheduled(beat, end, offset, events, pins)
        key = (self._scene_key, first == 1, end - first + 1, beat - first, first - start, end - start + 1,
               tuple(e.model_dump_json() for e in evs), tuple(p.model_dump_json() for p in pns))
        if key in _WINDOWS:
            _WINDOWS.move_to_end(key)
            return _WINDOWS[key], offset
        situation = self.situation.model_copy(update={"beats": end - first + 1, "events": evs, "pins": pns})
        previous = self.previous if first == 1 else None
        polytope = compile_constraints(self.cast, situation, previous=previous)
        window = _reduce(polytope, StateLayout(situation.cast, situation.beats, self._layout.max_characters),
                         known_beats=beat - first, shift=first - start, network_beats=end - start + 1)
        _WINDOWS[key] = window
        if len(_WINDOWS) > _CACHE_SIZE:
            _WINDOWS.popitem(last=False)
        return window, offset

    def _known(self, start: int, beat: int) -> torch.Tensor:
        """`[C, beat − start, F]` values of the played beats start..beat−1."""
        return self._values[:, start - self._first: beat - self._first]

    def _known_flat(self, start: int, end: int) -> torch.Tensor:
        """The network window's flat tensor with the played beats filled in (open beats 0)."""
        beat = self.beat + 1
        x = torch.zeros(len(self.situation.cast), end - start + 1, self._layout.features)
        x[:, : beat - start] = self._known(start, beat)
        return x.reshape(-1)

    def _mask(self, length: int) -> torch.Tensor:
        """`[C, length, F]` float mask of the real variables of a window of `length` beats."""
        if length not in self._masks:
            layout = StateLayout(self.situation.cast, length, self._layout.max_characters)
            self._masks[length] = layout.mask().float()
        return self._masks[length]

    @staticmethod
    def _bounded(window: _Window, known_flat: torch.Tensor) -> Polytope:
        shift = 0
        if window.fixed_pos.numel():
            shift = window.A_fixed @ known_flat[window.fixed_pos].to(torch.float64)
        return Polytope(window.A_free, window.lower - shift, window.upper - shift, window.names,
                        window.columns)

    def _plan(self) -> _Plan:
        """The next beat's template (looked up by what is scheduled in the window), and its noise."""
        beat = self.beat + 1
        start, end = self._span(beat, self._events, self._pins)
        evs = [e for e in (*self.situation.events, *self._events) if start <= e.beat <= end]
        pns = [p for p in (*self.situation.pins, *self._pins) if start <= _beat_of(p.var) <= end]
        key = (self._scene_key, min(beat, 3), start - beat, end - beat,
               *((id(e), e.beat - beat) for e in evs), *((id(p), _beat_of(p.var) - beat) for p in pns))
        if key in _MEMO:
            _MEMO.move_to_end(key)
        else:
            _MEMO[key] = (self._template(beat, start, end), evs, pns)  # evs, pns keep their ids taken
            if len(_MEMO) > _MEMO_SIZE:
                _MEMO.popitem(last=False)
        template = _MEMO[key][0]
        rng = self._generator.get_state()
        noise = torch.randn((template.characters, template.length, self._layout.features),
                            generator=self._generator)
        return _Plan(self, beat, start, template, evs, self._known(start, beat), noise, max(0, beat - 2), rng)

    def _template(self, beat: int, start: int, end: int) -> _Template:
        window, _ = self._window(beat, end, start, self._events, self._pins)
        evs, pns = self._scheduled(start, end, start - 1, self._events, [])
        length = end - start + 1
        key = (id(window), self._scene_key, beat - start, length, tuple(e.model_dump_json() for e in evs),
               tuple(p.model_dump_json() for p in pns))
        if key in _TEMPLATES:
            _TEMPLATES.move_to_end(key)
            return _TEMPLATES[key]
        situation = self.situation.model_copy(update={"beats": length, "events": evs, "pins": pns})
        template = _Template(window, self.engine.condition(self.cast, situation), self._mask(length),
                             len(self.situation.cast), length, beat - start)
        _TEMPLATES[key] = template  # holds `window`, so its id stays unique while the entry lives
        if len(_TEMPLATES) > _CACHE_SIZE:
            _TEMPLATES.popitem(last=False)
        return template

    def _commit(self, plan: _Plan, values: torch.Tensor, rows: list[int]) -> Played:
        """Record the sampled beat `[C, F]` (its binding `rows` of the window); drop what `history_limit`
        no longer keeps."""
        kept = self._values.shape[1]
        if kept == self._store.shape[1]:  # grow by doubling: appending a beat costs O(1), not O(history)
            room = self._values.new_zeros(self._values.shape[0], max(kept, 8), self._values.shape[2])
            self._store = torch.cat([self._values, room], dim=1)
        self._store[:, kept] = values
        self._values = self._store[:, : kept + 1]
        events = [e.id for e in plan.events if e.beat == plan.beat]
        played = Played(plan.beat, events, values, rows, plan.template.window, plan.offset)
        self._history.append(played)
        if self.history_limit is not None:
            keep = max(self.history_limit, self.window)
            drop = self._values.shape[1] - keep
            if drop > 0:
                self._values = self._store = self._values[:, drop:].contiguous()
                self._first += drop
            dropped = max(0, len(self._history) - self.history_limit)
            if dropped:
                self._dropped = self.readable(self._history[dropped - 1])  # what the next beat follows
                del self._history[:dropped]
            self._events = [e for e in self._events if e.beat >= self._first]
        return played


def _reduce(polytope: Polytope, layout: StateLayout, known_beats: int, shift: int,
            network_beats: int) -> _Window:
    """Split the window's columns into known (its first `known_beats` beats) and open ones; keep rows
    that touch an open column. Positions map into the network window, which starts `shift` beats earlier."""
    beat_of = torch.tensor([int(c.rsplit("@", 1)[1]) for c in polytope.columns])
    is_free = beat_of > known_beats
    new = torch.full((len(beat_of),), -1, dtype=torch.long)
    new[is_free] = torch.arange(int(is_free.sum()))
    new[~is_free] = torch.arange(int((~is_free).sum()))
    coo = polytope.A.to_sparse_coo().coalesce()
    r, c = coo.indices()
    v = coo.values()
    free_entry = is_free[c]
    touched = torch.zeros(polytope.shape[0], dtype=torch.bool)
    touched[r[free_entry]] = True
    rows = torch.nonzero(touched).flatten()
    row_new = torch.full((polytope.shape[0],), -1, dtype=torch.long)
    row_new[rows] = torch.arange(rows.numel())
    keep = touched[r]
    m, n_free, n_fixed = rows.numel(), int(is_free.sum()), int((~is_free).sum())

    def csr(mask: torch.Tensor, width: int) -> torch.Tensor:
        sel = keep & mask
        a = torch.sparse_coo_tensor(torch.stack([row_new[r[sel]], new[c[sel]]]), v[sel], (m, width),
                                    dtype=torch.float64, check_invariants=False)
        return a.coalesce().to_sparse_csr()

    F, L = layout.features, layout.beats
    pos = layout.positions
    char, beat, feat = pos // (L * F), (pos // F) % L, pos % F
    net = (char * network_beats + beat + shift) * F + feat
    return _Window(
        A_free=csr(free_entry, n_free), A_fixed=csr(~free_entry, n_fixed),
        lower=polytope.lower[rows].clone(), upper=polytope.upper[rows].clone(),
        names=[polytope.names[i] for i in rows.tolist()],
        columns=[polytope.columns[i] for i in torch.nonzero(is_free).flatten().tolist()],
        free_pos=net[is_free], fixed_pos=net[~is_free],
    )


def _beat(agent: Agent, played: Played, before: Beat | None) -> Beat:
    """The readable beat: felt, shown, mood, stance, behaviour, subtext and binding rows per character.

    `before` is the beat played just before, whose behaviours pay the repeat penalty.
    """
    layout, cast = agent._layout, agent.situation.cast
    binding = []
    for r in played.rows:
        name = shift_beats(played.window.names[r], played.offset)
        m = _BEATS.search(name)
        if m and int(m[2] or m[1]) == played.beat:
            binding.append(name)
    rows = played.values.to(torch.float64).tolist()
    previous = {c.character: c.behaviour for c in before.cells} if before else {}
    cells = []
    for k, cid in enumerate(cast):
        v = rows[k]
        felt = {e: round(x, 6) for e, x in zip(OCC_EMOTIONS, v[FELT])}
        shown = {e: round(x, 6) for e, x in zip(OCC_EMOTIONS, v[SHOWN])}
        mood = {d: round(x, 6) for d, x in zip(PAD, v[MOOD])}
        stance = {o: {s: round(v[layout.feature_index("stance", s, o)], 6) for s in STANCE}
                  for o in cast if o != cid}
        behaviour = choose_behaviour(agent.cast[cid].behaviours, shown, mood, previous.get(cid))
        subtext = sorted((Subtext(emotion=e, felt=felt[e], shown=shown[e]) for e in OCC_EMOTIONS
                          if abs(felt[e] - shown[e]) > SUBTEXT_THRESHOLD),
                         key=lambda s: -abs(s.felt - s.shown))
        mine = [b for b in binding if b.startswith(f"{cid}.") or f":{cid}." in b or f".{cid}." in b]
        cells.append(CharacterBeat(character=cid, beat=played.beat, felt=felt, shown=shown, mood=mood,
                                   stance=stance, behaviour=behaviour.id if behaviour else None,
                                   behaviour_text=behaviour.text if behaviour else None, subtext=subtext,
                                   binding=mine))
    return Beat(beat=played.beat, events=played.events, cells=cells)
