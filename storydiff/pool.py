"""Many live scenes stepped together (DESIGN §8, §10): one batched network call per sampler step
and one projection call per beat, the scenes' constraint sets stacked with `Polytope.block_diag`.

Scenes of different casts and lengths are padded to a common `[characters, beats]` and masked.
Each scene draws its noise from its own generator, so what a scene plays does not depend on
which other scenes share the pool: stepping a pool gives the beats the agents would play alone
(to the projection's tolerance).

What depends only on the pool's composition (which template each scene steps with: its window's
rows, conditioning and masks) is stacked once, as a `_Batch`, and reused while the composition
holds, as it does through steady open-ended play. Per beat the host then does, per scene, only
what must be its own: find its template, draw its noise, hand over its played beats and record
the beat sampled. Everything else is a few tensor operations over the whole pool: the noisy
start, the known values inpainted, the bounds moved by the played beats, the check that every
scene meets its rows, and the binding rows split by scene. Readable `Beat`s are built when asked for.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import overload

import torch

from .agent import AGENT_TOL, Agent, Beat, Played, _Plan, _Template, shift_beats
from .conditioning import SceneCondition
from .errors import StorydiffError
from .polytope import Polytope
from .sampling import SAMPLERS, Projected

_BATCHES: OrderedDict[tuple, _Batch] = OrderedDict()
_BATCH_CACHE_SIZE = 16
_NO_RNG = torch.Generator()


class Pool:
    """A list of agents on one engine, sharing sampler and step count; `next_beat()` steps them all."""

    def __init__(self, agents: Iterable[Agent]):
        self.agents: list[Agent] = []
        for agent in agents:
            self.add(agent)

    def add(self, agent: Agent) -> None:
        if not isinstance(agent, Agent):
            raise StorydiffError(f"a pool holds storydiff agents, got {type(agent).__name__}")
        if any(a is agent for a in self.agents):
            raise StorydiffError("this agent is already in the pool")
        if self.agents:
            first = self.agents[0]
            if agent.engine.model is not first.engine.model:
                raise StorydiffError("agents in one pool must share one engine")
            if agent.settings != first.settings:
                raise StorydiffError(f"agents in one pool must share sampler, steps, projection and start σ: "
                                     f"{first.settings} here, {agent.settings} added")
        self.agents.append(agent)

    def remove(self, agent: Agent) -> None:
        self.agents = [a for a in self.agents if a is not agent]

    def next_beat(self) -> Beats:
        """The next beat of every agent, in pool order. All or nothing: a failing scene changes no agent."""
        return Beats(self.agents, step_agents(self.agents))

    def __len__(self) -> int:
        return len(self.agents)

    def __iter__(self) -> Iterator[Agent]:
        return iter(self.agents)


class Beats(Sequence[Beat]):
    """The beats a pool just played, one per agent; each `Beat` is built on first access."""

    def __init__(self, agents: Sequence[Agent], played: Sequence[Played]):
        self._agents, self._played = list(agents), list(played)

    @overload
    def __getitem__(self, index: int) -> Beat: ...
    @overload
    def __getitem__(self, index: slice) -> list[Beat]: ...

    def __getitem__(self, index: int | slice) -> Beat | list[Beat]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._agents[index].readable(self._played[index])

    def __len__(self) -> int:
        return len(self._played)

    def values(self) -> list[torch.Tensor]:
        """Each agent's sampled beat as a `[characters, features]` tensor, without building a `Beat`."""
        return [p.values for p in self._played]


@dataclass(eq=False)
class _Batch:
    """One pool composition stacked once: `[B, C, L, F]` masks and conditioning, flat positions into
    that padded batch (or into the played beats, packed scene after scene), and the block-diagonal
    rows of every scene's window."""

    templates: tuple[_Template, ...]  # held, so the ids in the cache key stay unique
    shape: tuple[int, int, int, int]
    condition: SceneCondition
    mask: torch.Tensor       # [B, C, L, F] float, on the device
    is_known: torch.Tensor   # [B, C, L, F] bool, on the device
    carry: torch.Tensor      # [B, C, L, F] long: beat l reads the played beat min(l, known − 1)
    scene_pos: torch.Tensor  # each scene's [c, length, F] block, in scene order, on the device
    known_pos: torch.Tensor  # its played beats [c, known, F], on the device
    sampled_pos: torch.Tensor  # its sampled beat [c, F], on the device
    sizes: list[int]         # c·F per scene
    free_pos: torch.Tensor   # the open columns, on the device
    fixed_idx: torch.Tensor  # the known columns, as indices into the packed played beats
    polytope: Polytope       # block-diagonal rows; bounds before the played beats are moved over
    A_fixed: torch.Tensor    # block-diagonal [rows, known columns]
    row_scene: torch.Tensor  # the scene of each row
    row_first: torch.Tensor  # each scene's first row


@dataclass(eq=False)
class _Slot:
    """One template laid out in a `[C, L, F]` slot of the padded batch; shared by the scenes using it."""

    mask: torch.Tensor
    carry: torch.Tensor
    positions: dict[str, torch.Tensor]  # flat positions within the slot (the packed played beats for "fixed")
    coo: dict[str, tuple[torch.Tensor, torch.Tensor]]  # A_free and A_fixed as (indices, values)


def _slot(t: _Template, C: int, L: int, F: int) -> _Slot:
    c, n, length = t.characters, t.known, t.length
    mask = torch.zeros(C, L, F)
    mask[:c, :length] = t.mask
    block = torch.arange(C * L * F).reshape(C, L, F)[:c, :length]

    def at(local: torch.Tensor, beats: int) -> torch.Tensor:
        """Positions in the scene's own flat `[c, length, F]` window, as `[char, beat, F]` in `beats`."""
        return (local // (length * F) * beats + (local // F) % length) * F + local % F

    w = t.window
    return _Slot(
        mask=mask, carry=torch.arange(L).clamp(max=max(n - 1, 0)),
        positions={"scene": block.reshape(-1), "known": block[:, :n].reshape(-1),
                   "sampled": block[:, n].reshape(-1), "free": at(w.free_pos, L),
                   "fixed": at(w.fixed_pos, n)},
        coo={name: (a.indices(), a.values()) for name, a in
             (("free", w.A_free.to_sparse_coo().coalesce()), ("fixed", w.A_fixed.to_sparse_coo().coalesce()))},
    )


def _spread(parts: list[torch.Tensor], offsets: torch.Tensor) -> torch.Tensor:
    """Per-scene index tensors laid end to end, scene k's shifted by `offsets[k]`."""
    counts = torch.tensor([p.shape[-1] for p in parts])
    return torch.cat(parts, -1) + torch.repeat_interleave(offsets, counts)


def _block_diag(coo: list[tuple[torch.Tensor, torch.Tensor]], shapes: torch.Tensor) -> torch.Tensor:
    """`(indices, values)` blocks of `shapes` `[B, 2]` placed along the diagonal of one float64 CSR matrix."""
    corner = shapes.cumsum(0) - shapes
    counts = torch.tensor([v.numel() for _, v in coo])
    indices = torch.cat([i for i, _ in coo], 1) + torch.repeat_interleave(corner, counts, dim=0).T
    size = tuple(int(n) for n in shapes.sum(0))
    return torch.sparse_coo_tensor(indices, torch.cat([v for _, v in coo]), size, dtype=torch.float64,
                                   is_coalesced=True, check_invariants=False).to_sparse_csr()


def _build_batch(templates: tuple[_Template, ...], F: int, device: torch.device) -> _Batch:
    B, C, L = len(templates), max(t.characters for t in templates), max(t.length for t in templates)
    unique = list(dict.fromkeys(templates))  # a pool of copies of one scene has a few templates
    slots = {id(t): _slot(t, C, L, F) for t in unique}
    index = {id(t): u for u, t in enumerate(unique)}
    which = torch.tensor([index[id(t)] for t in templates])
    per = [slots[id(t)] for t in templates]
    slot = torch.arange(B) * (C * L * F)
    stacked = SceneCondition.stack([t.condition for t in unique], C, L)
    condition = stacked.select(which)
    windows = [t.window for t in templates]
    free_shape = torch.tensor([w.A_free.shape for w in windows])
    fixed_shape = torch.tensor([w.A_fixed.shape for w in windows])
    rows = free_shape[:, 0]
    polytope = Polytope(_block_diag([s.coo["free"] for s in per], free_shape),
                        torch.cat([w.lower for w in windows]), torch.cat([w.upper for w in windows]),
                        list(chain.from_iterable(w.names for w in windows)),
                        list(chain.from_iterable(w.columns for w in windows)))
    known = torch.tensor([t.characters * t.known * F for t in templates])
    return _Batch(
        templates=templates, shape=(B, C, L, F), condition=condition.to(device),
        mask=torch.stack([s.mask for s in per]).to(device),
        is_known=(torch.arange(L)[None, :] < torch.tensor([t.known for t in templates])[:, None])
        [:, None, :, None].expand(B, C, L, F).to(device),
        carry=torch.stack([s.carry for s in per])[:, None, :, None].expand(B, C, L, F).to(device),
        scene_pos=_spread([s.positions["scene"] for s in per], slot).to(device),
        known_pos=_spread([s.positions["known"] for s in per], slot).to(device),
        sampled_pos=_spread([s.positions["sampled"] for s in per], slot).to(device),
        sizes=[t.characters * F for t in templates],
        free_pos=_spread([s.positions["free"] for s in per], slot).to(device),
        fixed_idx=_spread([s.positions["fixed"] for s in per], known.cumsum(0) - known),
        polytope=polytope, A_fixed=_block_diag([s.coo["fixed"] for s in per], fixed_shape),
        row_scene=torch.repeat_interleave(torch.arange(B), rows), row_first=rows.cumsum(0) - rows,
    )


def _batch(templates: tuple[_Template, ...], F: int, device: torch.device) -> _Batch:
    """The stacked batch of this composition, built on its first beat and reused after."""
    key = (tuple(map(id, templates)), F, str(device))
    if key in _BATCHES:
        _BATCHES.move_to_end(key)
        return _BATCHES[key]
    batch = _BATCHES[key] = _build_batch(templates, F, device)
    if len(_BATCHES) > _BATCH_CACHE_SIZE:
        _BATCHES.popitem(last=False)
    return batch


def step_agents(agents: Sequence[Agent]) -> list[Played]:
    """One beat for each agent: one batched network call per sampler step, one projection call
    (`Polytope.block_diag` when there are several scenes). All or nothing: if any scene fails,
    no agent changes and StorydiffError names it."""
    if not agents:
        return []
    first = agents[0]
    engine = first.engine
    for a in agents:
        if a.engine.model is not engine.model or a.settings != first.settings:
            raise StorydiffError("agents stepped together must share the engine, sampler, steps, "
                                 "projection and start σ")
    if len({id(a) for a in agents}) != len(agents):
        raise StorydiffError("an agent appears twice in one pool")
    plans: list[_Plan] = []
    results: dict[int, tuple[torch.Tensor, list[int]]] = {}
    try:
        for a in agents:
            plans.append(a._plan())
        for fresh in (True, False):  # scenes at their first beat start from pure noise
            group = [p for p in plans if (p.template.known == 0) == fresh]
            if group:
                sigmas = first._sigmas if fresh else first._sigmas_played
                for p, values, rows in zip(group, *_sample(engine, group, sigmas)):
                    results[id(p)] = values, rows
    except BaseException:
        for p in plans:
            p.agent._generator.set_state(p.rng)
        raise
    return [p.agent._commit(p, *results[id(p)]) for p in plans]


def _sample(engine, plans: list[_Plan], sigmas: list[float]) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Run the sampler over the padded batch; per scene, the sampled beat `[c, F]` and its binding rows."""
    from .projection import project

    agent, dev = plans[0].agent, engine.device
    F = agent._layout.features
    batch = _batch(tuple(p.template for p in plans), F, dev)
    B, C, L, _ = batch.shape
    played = torch.cat([p.known.reshape(-1) for p in plans])  # packed, scene after scene
    shift = batch.A_fixed @ played[batch.fixed_idx].to(torch.float64)
    polytope = Polytope(batch.polytope.A, batch.polytope.lower - shift, batch.polytope.upper - shift,
                        batch.polytope.names, batch.polytope.columns, batch.polytope.sources)
    noise = torch.zeros(B * C * L * F, device=dev)
    noise[batch.scene_pos] = torch.cat([p.noise.reshape(-1) for p in plans]).to(dev)
    known = torch.zeros(B * C * L * F, device=dev)
    known[batch.known_pos] = played.to(dev)
    known = known.reshape(B, C, L, F)
    # Start from the beats played, the last one carried into the open beats (zero at a first beat).
    x = (noise.reshape(B, C, L, F) * sigmas[0] + known.gather(2, batch.carry)) * batch.mask
    model, project_mode = engine.model, agent.project
    state: dict = {"info": None}

    @torch.no_grad()
    def denoise(xt: torch.Tensor, sigma: float) -> torch.Tensor:
        d = model(xt, torch.full((B,), sigma, device=dev), batch.condition)
        return torch.where(batch.is_known, known, d) * batch.mask

    def proj(x0: torch.Tensor, index: int, last: bool) -> Projected:
        if not last and project_mode == "final":
            return Projected(x0, torch.zeros(B, device=dev))
        flat = x0.reshape(-1)
        y, info = project(flat[batch.free_pos].to(torch.float64)[None], polytope, tol=AGENT_TOL)
        out = flat.clone()
        out[batch.free_pos] = y[0].to(out.dtype)
        state["info"] = info
        return Projected(out.reshape(x0.shape), info.distance.expand(B), [], None)

    last = None
    for last in SAMPLERS[agent.sampler](denoise, x, sigmas, proj, _NO_RNG):
        pass
    info = state["info"]
    if polytope.shape[0] and float(info.max_violation.max()) > 100 * AGENT_TOL:
        projected = last.projected.cpu()
        for k, p in enumerate(plans):
            _check_met(p, projected[k])
    values = last.projected.reshape(-1)[batch.sampled_pos].cpu()
    values = [v.view(-1, F).clone() for v in values.split(batch.sizes)]
    rows: list[list[int]] = [[] for _ in plans]
    binding = torch.nonzero(info.binding_mask[0]).flatten().cpu()
    scene = batch.row_scene[binding]
    for k, r in zip(scene.tolist(), (binding - batch.row_first[scene]).tolist()):
        rows[k].append(r)
    return values, rows


def _check_met(plan: _Plan, projected: torch.Tensor) -> None:
    """Refuse a beat that breaks its rows (a scene left with no way on): nothing is committed."""
    agent, t = plan.agent, plan.template
    flat = projected[: t.characters, : t.length].reshape(-1)
    polytope = agent._bounded(t.window, agent._known_flat(plan.start, plan.start + t.length - 1))
    y = flat[t.window.free_pos].to(torch.float64)[None]
    worst = float(polytope.violation(y)[0]) if polytope.shape[0] else 0.0
    if worst > 100 * AGENT_TOL:
        from .feasibility import conflicting_rows

        rows = conflicting_rows(polytope) or []
        names = ", ".join(shift_beats(r, plan.offset) for r in rows) or "none found; the solver stopped early"
        raise StorydiffError(f"beat {plan.beat} of scene {agent.situation.id!r} cannot meet its "
                             f"constraints (violation {worst:.2g}); conflicting rows: {names}")
