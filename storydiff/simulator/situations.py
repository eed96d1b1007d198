"""Random situations: appraised events at random beats, and the keyframes an author might pin."""
from __future__ import annotations

import numpy as np
import torch

from ..models import Appraisal, Event, Pin, Situation
from .config import DEFAULT_CONFIG, SimulatorConfig, layout_for, typed_uniform

# Events (ours, shaped by OCC's variables): most drama is someone doing something to someone; harmful
# acts are usually blameworthy; bystanders share a little of the target's fortune; happenings without
# an agent (a storm, news) tend to hit everyone the same way; prospects have likelihood < 1.
AGENT_EVENT_P, TARGET_P, HARMFUL_P, BLAME_MATCHES_HARM_P = 0.6, 0.8, 0.55, 0.8
ACT_PROSPECTIVE_P, HAPPENING_PROSPECTIVE_P = 0.25, 0.5  # a threat vs. a storm that may or may not break
SELF_JUDGEMENT_P, BYSTANDER_P, SHARED_FATE_P, AFFECTED_P = 0.7, 0.5, 0.75, 0.8


def _sign(rng: np.random.Generator, negative_p: float) -> float:
    return -1.0 if rng.random() < negative_p else 1.0


def _agent_event(rng: np.random.Generator, event_id: str, beat: int, ids: list[str]) -> Event:
    agent = str(rng.choice(ids))
    others = [c for c in ids if c != agent]
    target = str(rng.choice(others)) if rng.random() < TARGET_P else None
    prospective = rng.random() < ACT_PROSPECTIVE_P
    likelihood = typed_uniform(rng, 0.3, 0.9) if prospective else 1.0
    harm = _sign(rng, HARMFUL_P)
    praise = harm * (1.0 if rng.random() < BLAME_MATCHES_HARM_P else -1.0) * typed_uniform(rng, 0.2, 1.0)
    own = typed_uniform(rng, -0.3, 0.6) if harm < 0 else typed_uniform(rng, -0.2, 0.8)
    self_praise = round(praise * typed_uniform(rng, 0.3, 1.0), 2) if rng.random() < SELF_JUDGEMENT_P else None
    appraisals = [Appraisal(character=agent, desirability=own, praiseworthiness=self_praise,
                            likelihood=likelihood)]
    if target is not None:
        appraisals.append(Appraisal(character=target, desirability=harm * typed_uniform(rng, 0.3, 1.0),
                                    praiseworthiness=praise, likelihood=likelihood))
    for c in others:
        if c != target and rng.random() < BYSTANDER_P:
            appraisals.append(Appraisal(character=c, desirability=round(harm * typed_uniform(rng, 0.0, 0.5), 2),
                                        praiseworthiness=round(praise * typed_uniform(rng, 0.3, 1.0), 2),
                                        likelihood=likelihood))
    return Event(id=event_id, beat=beat, agent=agent, target=target,
                 status="prospective" if prospective else "actual", appraisals=appraisals)


def _happening(rng: np.random.Generator, event_id: str, beat: int, ids: list[str]) -> Event:
    prospective = rng.random() < HAPPENING_PROSPECTIVE_P
    likelihood = typed_uniform(rng, 0.3, 0.9) if prospective else 1.0
    shared = _sign(rng, HARMFUL_P)
    affected = [c for c in ids if rng.random() < AFFECTED_P] or [str(rng.choice(ids))]
    sign = [shared if rng.random() < SHARED_FATE_P else -shared for _ in affected]
    appraisals = [Appraisal(character=c, desirability=s * typed_uniform(rng, 0.2, 1.0), likelihood=likelihood)
                  for c, s in zip(affected, sign, strict=True)]
    return Event(id=event_id, beat=beat, status="prospective" if prospective else "actual",
                 appraisals=appraisals)


def random_situation(rng: np.random.Generator, ids: list[str], config: SimulatorConfig = DEFAULT_CONFIG,
                     situation_id: str = "simulated") -> Situation:
    """6-24 beats, a publicness, and 1-4 appraised events at random beats (no pins: see `random_pins`)."""
    beats = int(rng.integers(config.min_beats, config.max_beats + 1))
    n_events = int(rng.integers(1, config.max_events + 1))
    events = []
    for k in range(n_events):
        make = _agent_event if rng.random() < AGENT_EVENT_P else _happening
        events.append(make(rng, f"e{k + 1}", int(rng.integers(1, beats + 1)), ids))
    return Situation(id=situation_id, publicness=round(float(rng.uniform()), 2), cast=list(ids), beats=beats,
                     events=sorted(events, key=lambda e: e.beat))


PIN_MARGIN = (0.0, 0.1)


def random_pins(rng: np.random.Generator, situation: Situation, x: torch.Tensor, p: float) -> list[Pin]:
    """With probability p, one or two keyframes on the simulated felt/shown/mood values, as an author
    would pin where the scene should arrive; taken loose around the trajectory so it satisfies them."""
    if rng.random() >= p:
        return []
    layout = layout_for(situation)
    names = [n for n in layout.names if ".stance." not in n]
    pins = []
    for name in rng.choice(names, size=int(rng.integers(1, 3)), replace=False):
        value = float(x.reshape(-1)[layout.positions[layout.index(str(name))]])
        margin = float(rng.uniform(*PIN_MARGIN))
        floor = 0.0 if (".felt." in name or ".shown." in name) else -1.0
        if rng.random() < 0.5:
            pins.append(Pin(var=str(name), min=max(floor, np.floor((value - margin) * 1000) / 1000)))
        else:
            pins.append(Pin(var=str(name), max=min(1.0, np.ceil((value + margin) * 1000) / 1000)))
    return pins
