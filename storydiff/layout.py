"""The scene state's index map: variable names ↔ tensor positions (DESIGN §2).

A scene is a tensor `[batch, characters, beats, features]`. The feature axis is
felt (22) | shown (22) | mood (3) | stance (3 per character slot, `max_characters`
slots, the self slot and absent characters masked), so casts of different sizes
batch together. The flat order the polytope uses — character, then beat, then
feature, real variables only — is `StateLayout.names`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import torch

from .vocab import LAYERS, OCC_EMOTIONS, PAD, STANCE

N_EMOTIONS = len(OCC_EMOTIONS)
FELT = slice(0, N_EMOTIONS)
SHOWN = slice(N_EMOTIONS, 2 * N_EMOTIONS)
MOOD = slice(2 * N_EMOTIONS, 2 * N_EMOTIONS + len(PAD))
STANCE_START = MOOD.stop
DEFAULT_MAX_CHARACTERS = 16

_NAME = re.compile(r"^(?P<character>[A-Za-z_][\w-]*)\.(?P<layer>felt|shown|mood|stance)\."
                   r"(?:(?P<other>[A-Za-z_][\w-]*)\.)?(?P<item>[a-z-]+)@(?P<beat>\d+)$")


def n_features(max_characters: int = DEFAULT_MAX_CHARACTERS) -> int:
    return STANCE_START + len(STANCE) * max_characters


@dataclass(frozen=True)
class VariableName:
    """A parsed `character.layer[.other].item@beat`; `beat` counts from 1 as people see it."""

    character: str
    layer: str
    item: str
    beat: int
    other: str | None = None

    def __str__(self) -> str:
        middle = f"{self.other}.{self.item}" if self.other else self.item
        return f"{self.character}.{self.layer}.{middle}@{self.beat}"


def parse_variable(name: str) -> VariableName:
    """Parse a variable name; raises ValueError with what is wrong."""
    m = _NAME.match(name.strip())
    if not m:
        raise ValueError(f"'{name}' is not a variable name; write character.layer.item@beat, e.g. mara.felt.anger@3")
    layer, item, other = m["layer"], m["item"], m["other"]
    vocab = {"felt": OCC_EMOTIONS, "shown": OCC_EMOTIONS, "mood": PAD, "stance": STANCE}[layer]
    if item not in vocab:
        raise ValueError(f"'{item}' is not a {layer} item in '{name}'; use one of: {', '.join(vocab)}")
    if (layer == "stance") != (other is not None):
        raise ValueError(f"'{name}': only stance names another character (mara.stance.ilan.trust@3)")
    beat = int(m["beat"])
    if beat < 1:
        raise ValueError(f"'{name}': beats count from 1")
    return VariableName(m["character"], layer, item, beat, other)


class StateLayout:
    """Index map for one situation's cast (in the situation's order) and number of beats."""

    def __init__(self, cast: list[str], beats: int, max_characters: int = DEFAULT_MAX_CHARACTERS):
        if len(cast) > max_characters:
            raise ValueError(f"a cast of {len(cast)} exceeds the {max_characters} characters this model handles")
        self.cast = list(cast)
        self.beats = beats
        self.max_characters = max_characters
        self.features = n_features(max_characters)

    def feature_index(self, layer: str, item: str, other: str | None = None) -> int:
        """Position on the feature axis of one item of one layer."""
        if layer == "felt":
            return FELT.start + OCC_EMOTIONS.index(item)
        if layer == "shown":
            return SHOWN.start + OCC_EMOTIONS.index(item)
        if layer == "mood":
            return MOOD.start + PAD.index(item)
        if layer == "stance" and other is not None:
            return STANCE_START + len(STANCE) * self.cast.index(other) + STANCE.index(item)
        raise ValueError(f"unknown layer {layer!r}")

    def _character_features(self, character: str) -> list[tuple[str, int]]:
        """(name without beat, feature index) for every real variable of one character at one beat."""
        out = [(f"{character}.felt.{e}", self.feature_index("felt", e)) for e in OCC_EMOTIONS]
        out += [(f"{character}.shown.{e}", self.feature_index("shown", e)) for e in OCC_EMOTIONS]
        out += [(f"{character}.mood.{d}", self.feature_index("mood", d)) for d in PAD]
        for other in self.cast:
            if other != character:
                out += [(f"{character}.stance.{other}.{s}", self.feature_index("stance", s, other)) for s in STANCE]
        return out

    @cached_property
    def _columns(self) -> tuple[list[str], list[int]]:
        names, positions = [], []
        for c, character in enumerate(self.cast):
            features = self._character_features(character)
            for b in range(self.beats):
                for stem, f in features:
                    names.append(f"{stem}@{b + 1}")
                    positions.append((c * self.beats + b) * self.features + f)
        return names, positions

    @property
    def names(self) -> list[str]:
        """One name per flat column, in polytope column order."""
        return self._columns[0]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Flat column of a variable name; KeyError names the variable."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no variable {name!r} in this scene (cast: {', '.join(self.cast)}; beats 1-{self.beats})")

    def column(self, character: str, layer: str, item: str, beat: int, other: str | None = None) -> int:
        """Flat column of a variable; `beat` counts from 0 here (tensor index)."""
        return self.index(str(VariableName(character, layer, item, beat + 1, other)))

    @cached_property
    def positions(self) -> torch.Tensor:
        """For each flat column, its position in the flattened `[characters, beats, features]` tensor."""
        return torch.tensor(self._columns[1], dtype=torch.long)

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.cast), self.beats, self.features

    def mask(self) -> torch.Tensor:
        """Bool `[characters, beats, features]`: True where a real variable lives."""
        m = torch.zeros(self.shape, dtype=torch.bool).reshape(-1)
        m[self.positions] = True
        return m.reshape(self.shape)

    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        """`[batch, characters, beats, features]` → `[batch, len(self)]` in column order."""
        return x.reshape(x.shape[0], -1)[:, self.positions.to(x.device)]

    def unflatten(self, y: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        """`[batch, len(self)]` → `[batch, characters, beats, features]`, masked slots from `like` (else 0)."""
        out = torch.zeros((y.shape[0], *self.shape), dtype=y.dtype, device=y.device) if like is None else like.clone()
        flat = out.reshape(y.shape[0], -1)
        flat[:, self.positions.to(y.device)] = y
        return flat.reshape(out.shape)

    def lower(self) -> torch.Tensor:
        """Natural lower bound per column: 0 for emotions, -1 for mood and stance."""
        return torch.tensor([0.0 if (".felt." in n or ".shown." in n) else -1.0 for n in self.names], dtype=torch.float64)

    def describe(self) -> str:
        return f"{len(self.cast)} characters × {self.beats} beats, {len(self)} variables"


assert LAYERS == ("felt", "shown", "mood", "stance")  # the feature order above relies on it
