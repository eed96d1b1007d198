"""What every rule family shares: the scene being compiled and a builder of named sparse rows."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import Problem, ValidationError
from ..layout import StateLayout
from ..models import Cast, Character, Located, Situation
from ..polytope import Polytope
from ..vocab import OCC_EMOTIONS

INF = float("inf")


def where(model: Located | None) -> str | None:
    """The `path:line:column` of the element a row comes from, for Polytope.sources."""
    if model is None or model.source is None:
        return None
    return f"{model.source.path}:{model.source.line}:{model.source.column}"


def number(x: float) -> str:
    """A bound as it appears in a row name: `0.4`, not `0.4000000001`."""
    return f"{round(x, 3):g}"


@dataclass
class SceneContext:
    """The inputs of one compile: cast, situation, index map and the carried-over state."""

    cast: Cast
    situation: Situation
    layout: StateLayout
    previous: dict[str, float] = field(default_factory=dict)
    _base: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def beats(self) -> int:
        return self.situation.beats

    def character(self, character_id: str) -> Character:
        return self.cast[character_id]

    def others(self, character_id: str) -> list[str]:
        return [c for c in self.situation.cast if c != character_id]

    def col(self, variable: str, beat: int) -> int:
        """Column of `variable@beat` (beat from 1), e.g. col("mara.felt.anger", 3).

        The layout's flat order is character, then beat, then feature (DESIGN §2), so a variable's
        columns are evenly spaced across beats; the spacing is read off the layout, not assumed.
        """
        if variable not in self._base:
            first = self.layout.index(f"{variable}@1")
            stride = self.layout.index(f"{variable}@2") - first if self.beats > 1 else 0
            self._base[variable] = (first, stride)
        first, stride = self._base[variable]
        return first + (beat - 1) * stride

    def check_emotion(self, model: Located, emotion: str | None) -> None:
        """Raise a ValidationError at `model` unless `emotion` is an OCC category (or None)."""
        if emotion is not None and emotion not in OCC_EMOTIONS:
            raise self.fail(model, "unknown-emotion", f"'{emotion}' is not an OCC emotion; use one of: "
                            + ", ".join(OCC_EMOTIONS))

    def fail(self, model: Located | None, code: str, message: str) -> ValidationError:
        """A ValidationError pointing at `model` (else at the situation file)."""
        src = (model.source if model is not None and model.source else None) or self.situation.source
        path = src.path if src else (self.situation.path or "<situation>")
        return ValidationError([Problem(path, src.line if src else 1, src.column if src else 1, code, message)])


class RowBuilder:
    """Collects rows `lower ≤ Σ coef·y[col] ≤ upper`, each with a name and a source, as CSR lists."""

    def __init__(self) -> None:
        self.crow: list[int] = [0]
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.names: list[str] = []
        self.sources: list[str | None] = []
        self._seen: set[str] = set()

    def add(self, name: str, terms: dict[int, float], lower: float = -INF, upper: float = INF,
            source: Located | None = None) -> None:
        """Append one row; a repeated name (the same rule written twice) becomes `stem#k@beat`."""
        if name in self._seen:
            stem, at, beat = name.rpartition("@")
            k = 2
            while f"{stem}#{k}{at}{beat}" in self._seen:
                k += 1
            name = f"{stem}#{k}{at}{beat}"
        self._seen.add(name)
        for c in sorted(terms):
            self.cols.append(c)
            self.vals.append(terms[c])
        self.crow.append(len(self.cols))
        self.lower.append(lower)
        self.upper.append(upper)
        self.names.append(name)
        self.sources.append(where(source))

    def polytope(self, columns: list[str]) -> Polytope:
        f64 = torch.float64
        A = torch.sparse_csr_tensor(torch.tensor(self.crow, dtype=torch.int64),
                                    torch.tensor(self.cols, dtype=torch.int64),
                                    torch.tensor(self.vals, dtype=f64),
                                    size=(len(self.names), len(columns)), dtype=f64, check_invariants=True)
        return Polytope(A=A, lower=torch.tensor(self.lower, dtype=f64), upper=torch.tensor(self.upper, dtype=f64),
                        names=self.names, columns=list(columns), sources=self.sources)
