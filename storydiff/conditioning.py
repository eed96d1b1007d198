"""What the denoiser is conditioned on, as tensors: who the characters are and what happens.

Everything a situation file can say becomes a tensor here, with a mask for what
is unknown (real text has no traits or events): masked entries take the null
condition, the same dropout classifier-free guidance trains with (DESIGN §5).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch

from .affect import baseline, static_stance
from .limits import LIMIT_FEATURES
from .models import Appraisal, Cast, Character, Event, Situation
from .vocab import HOFSTEDE, PAD, STANCE

EMBED_DIM = 384  # all-MiniLM-L6-v2
# Per character and beat. Whose act it was is OCC's attribution branch (Ortony, Clore & Collins 1988):
# a blameworthy act of one's own raises shame and remorse, another's raises reproach and anger (and
# moves one's stance toward them). The last three are OCC's branches as separate inputs, each the
# variable that drives one emotion pair (pride/shame, admiration/reproach, hope/fear): a product of
# a variable and a flag is what a linear input layer cannot form, and rare branches were not learnt.
EVENT_FEATURES = ("desirability", "praiseworthiness", "appealingness", "likelihood", "prospective", "present",
                  "own-act", "others-act", "praiseworthiness-own-act", "praiseworthiness-others-act",
                  "desirability-prospective")

Embedder = Callable[[list[str]], torch.Tensor]
# What the null condition zeroes (`SceneCondition.null`, and condition dropout in training): one list,
# so that what guidance samples with is what training dropped.
NULL_FIELDS = ("trait_mask", "culture_mask", "description_mask", "event_mask", "relations", "mood", "limits",
               "publicness")
# The leading axes of each field (before the batch axis is added) that run over characters ("c") or
# beats ("t"); the axes after them are features. Padding and cropping both read it.
AXES = {"traits": "c", "culture": "c", "description": "c", "relations": "cc", "mood": "c", "events": "ct", "limits": "ct",
        "publicness": "", "trait_mask": "c", "culture_mask": "c", "description_mask": "c", "event_mask": "",
        "characters": "c", "beats": "t", "from_text": ""}


@dataclass
class SceneCondition:
    """Per-scene conditioning; the leading axis is the batch once `stack`ed. Masks are float 0/1."""

    traits: torch.Tensor          # [C, 5] Big Five in [0, 1]
    culture: torch.Tensor         # [C, 6] Hofstede / 100
    description: torch.Tensor     # [C, 384] MiniLM embedding of the description
    relations: torch.Tensor       # [C, C, 3] affect.static_stance toward each other (0: none written)
    mood: torch.Tensor            # [C, 3] baseline mood (PAD): the written <mood>, else Mehrabian's from traits
    events: torch.Tensor          # [C, T, 11] appraisal of the beat's events by each character (EVENT_FEATURES)
    limits: torch.Tensor          # [C, T, 94] how far the constraint set cuts into each value (limits.py)
    publicness: torch.Tensor      # [1]
    trait_mask: torch.Tensor      # [C]
    culture_mask: torch.Tensor    # [C]
    description_mask: torch.Tensor  # [C]
    event_mask: torch.Tensor      # [1] 1 where events are known (scripted), 0 for real text
    characters: torch.Tensor      # [C] 1 for a real character, 0 for padding
    beats: torch.Tensor           # [T] 1 for a real beat, 0 for padding
    from_text: torch.Tensor       # [1] 1 for a scene read from real dramatic text, 0 for a simulated or authored one

    def to(self, device: torch.device | str) -> SceneCondition:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def null(self) -> SceneCondition:
        """The unconditional version: traits, culture, description, relations, mood, events and limits dropped.

        `from_text` stays: it says which kind of data the scene is drawn like, not what the
        author asked for, so the null condition of a simulated scene is not mixed up with
        real text (which has no traits or events either).
        """
        return replace(self, **{name: torch.zeros_like(getattr(self, name)) for name in NULL_FIELDS})

    @staticmethod
    def stack(items: list[SceneCondition], characters: int, beats: int) -> SceneCondition:
        """Batch conditions of different cast sizes and lengths, padding to `characters` × `beats`."""
        out = {}
        for f in fields(SceneCondition):
            padded = [_pad(getattr(c, f.name), f.name, characters, beats) for c in items]
            out[f.name] = torch.stack(padded)
        return SceneCondition(**out)

    def select(self, index: torch.Tensor | slice) -> SceneCondition:
        """Scenes `index` of a stacked condition."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def beat_window(self, start: int, stop: int) -> SceneCondition:
        """Beats `start`..`stop − 1` of a stacked condition: what a window of a long scene is told."""
        return replace(self, **{f.name: getattr(self, f.name)[(slice(None), *(
            slice(start, stop) if axis == "t" else slice(None) for axis in AXES[f.name]))] for f in fields(self)})

    def cropped(self, characters: int, beats: int) -> SceneCondition:
        """A stacked condition cut to its first `characters` × `beats` (what padding added beyond them)."""
        return replace(self, **{f.name: getattr(self, f.name)[(slice(None), *_extent(f.name, characters, beats))]
                                for f in fields(self)})


def _extent(name: str, characters: int, beats: int) -> tuple[slice, ...]:
    """Slices of one field's character and beat axes (`AXES`), to `characters` and `beats`."""
    return tuple(slice(0, characters if axis == "c" else beats) for axis in AXES[name])


def _pad(t: torch.Tensor, name: str, characters: int, beats: int) -> torch.Tensor:
    """Zero-pad the character axes (and beat axis) of one field to a common size."""
    axes = _extent(name, characters, beats)
    out = torch.zeros(*(a.stop for a in axes), *t.shape[len(axes):], dtype=t.dtype)
    out[tuple(slice(0, s) for s in t.shape)] = t
    return out


def _appraisal_features(event: Event, appraisal: Appraisal) -> list[float]:
    """One appraisal as `EVENT_FEATURES`."""
    prospective = 1.0 if event.status == "prospective" else 0.0
    own = 1.0 if event.agent == appraisal.character else 0.0
    others = 1.0 if event.agent is not None and event.agent != appraisal.character else 0.0
    praise = appraisal.praiseworthiness or 0.0
    return [appraisal.desirability, praise, appraisal.appealingness or 0.0, appraisal.likelihood, prospective, 1.0,
            own, others, own * praise, others * praise, prospective * appraisal.desirability]


def _descriptions(chars: list[Character], embed: Embedder | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`[C, 384]` embeddings of the characters' written descriptions and `[C]` 1 where there is one."""
    out, mask = torch.zeros(len(chars), EMBED_DIM), torch.zeros(len(chars))
    written = [k for k, c in enumerate(chars) if c.description.strip()]
    if embed is not None and written:
        out[written] = embed([chars[k].description.strip() for k in written]).float().reshape(len(written), EMBED_DIM)
        mask[written] = 1.0
    return out, mask


def condition_from(cast: Cast, situation: Situation, embed: Embedder | None = None,
                   unwritten_traits_unknown: bool = False, limits: torch.Tensor | None = None) -> SceneCondition:
    """Conditioning tensors for a situation's cast, in the situation's cast order.

    Characters whose file has no `<personality>` have average traits (0.5), or, with
    `unwritten_traits_unknown`, masked ones (for a network trained to read them missing).
    `limits` is `limits.variable_limits` of the situation's constraint set (none: no limits).
    """
    ids = situation.cast
    C, T = len(ids), situation.beats
    chars = [cast[i] for i in ids]
    traits = torch.tensor([c.personality.vector() for c in chars], dtype=torch.float32)
    culture = torch.zeros(C, len(HOFSTEDE))
    culture_mask = torch.zeros(C)
    for k, cid in enumerate(ids):
        cult = cast.culture_of(cid)
        if cult is not None:
            culture[k] = torch.tensor([cult.hofstede.get(d, 50.0) / 100.0 for d in HOFSTEDE])
            culture_mask[k] = 1.0
    relations = torch.zeros(C, C, len(STANCE))
    for i, cid in enumerate(ids):
        for j, other in enumerate(ids):
            stance = static_stance(cast, cid, other) if i != j else None
            if stance is not None:
                relations[i, j] = torch.tensor(stance)
    mood = torch.tensor([baseline(c)[0] for c in chars], dtype=torch.float32).reshape(C, len(PAD))
    events = torch.zeros(C, T, len(EVENT_FEATURES))
    for ev in situation.events:
        b = ev.beat - 1
        for ap in ev.appraisals:
            if ap.character in ids and 0 <= b < T:
                k = ids.index(ap.character)
                events[k, b] += torch.tensor(_appraisal_features(ev, ap))
    description, description_mask = _descriptions(chars, embed)
    trait_mask = torch.tensor([0.0 if unwritten_traits_unknown and "personality" not in c.model_fields_set else 1.0
                               for c in chars])
    return SceneCondition(
        traits=traits, culture=culture, description=description, relations=relations, mood=mood, events=events,
        limits=torch.zeros(C, T, LIMIT_FEATURES) if limits is None else limits,
        publicness=torch.tensor([situation.publicness], dtype=torch.float32),
        trait_mask=trait_mask, culture_mask=culture_mask, description_mask=description_mask,
        event_mask=torch.ones(1), characters=torch.ones(C), beats=torch.ones(T), from_text=torch.zeros(1),
    )
