"""Many live scenes stepped together (DESIGN §8, §10): one batched network call per sampler step
and one projection call per beat, the scenes' constraint sets stacked with `Polytope.block_diag`.

Scenes of different casts and lengths are padded to a common `[characters, beats]` and masked.
Each scene draws its noise from its own generator, so what a scene plays does not depend on
which other scenes share the pool: stepping a pool gives the beats the agents would play alone
(to the projection's tolerance).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from .agent import Agent, Beat, step_agents
from .errors import StorydiffError


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

    def next_beat(self) -> list[Beat]:
        """The next beat of every agent, in pool order. All or nothing: a failing scene changes no agent."""
        return step_agents(self.agents)

    def __len__(self) -> int:
        return len(self.agents)

    def __iter__(self) -> Iterator[Agent]:
        return iter(self.agents)
