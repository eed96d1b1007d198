"""Synthetic scene polytopes shaped like compiled situations, for projection tests and benchmarks.

The rows follow DESIGN §4 (ranges and "never", display rules, volatility, ALMA-style
mood pull, OCC event thresholds, pins, a few rows across characters) on the
`StateLayout` column order, so the sparsity is that of a real scene: most rows touch
one character at one beat or one beat and the next. The weights are random, not
the literature's; only the structure is meant to be realistic. Bounds are widened
where needed so that a known point `y0` (a smooth random trajectory) is feasible.
"""
from __future__ import annotations

import numpy as np
import torch

from .layout import StateLayout
from .polytope import Polytope
from .vocab import OCC_EMOTIONS, PAD, STANCE


class _Rows:
    """Accumulates named sparse rows `lower ≤ Σ vals·y[cols] ≤ upper`."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.cols: list[list[int]] = []
        self.vals: list[list[float]] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    def add(self, name: str, cols: list[int], vals: list[float], lower: float, upper: float) -> None:
        self.names.append(name)
        self.cols.append(cols)
        self.vals.append(vals)
        self.lower.append(lower)
        self.upper.append(upper)

    def polytope(self, layout: StateLayout, y0: np.ndarray) -> Polytope:
        """The rows as a Polytope, bounds widened by 1e-3 wherever `y0` would violate them."""
        m, n = len(self.names), len(layout)
        rows = np.repeat(np.arange(m), [len(c) for c in self.cols])
        cols = np.asarray([c for row in self.cols for c in row], dtype=np.int64)
        vals = np.asarray([v for row in self.vals for v in row], dtype=np.float64)
        ay = np.bincount(rows, weights=vals * y0[cols], minlength=m)
        lower, upper = np.asarray(self.lower, dtype=np.float64), np.asarray(self.upper, dtype=np.float64)
        widen_lo, widen_hi = ay < lower, ay > upper
        lower[widen_lo] = ay[widen_lo] - 1e-3
        upper[widen_hi] = ay[widen_hi] + 1e-3
        A = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(vals), (m, n))
        return Polytope(A=A.coalesce().to_sparse_csr(), lower=torch.from_numpy(lower),
                        upper=torch.from_numpy(upper), names=self.names, columns=layout.names)


def _trajectory(rng: np.random.Generator, beats: int, size: int, lo: float, hi: float,
                step: float) -> np.ndarray:
    """A random walk `[beats, size]` inside `[lo, hi]` with steps well under the volatility limit."""
    start = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.4 * (hi - lo), size)
    walk = start + np.cumsum(rng.normal(0.0, step, (beats, size)), axis=0) - rng.normal(0.0, step, size)
    return np.clip(walk, lo + 0.01, hi - 0.01)


def _feasible_point(rng: np.random.Generator, layout: StateLayout, never: dict[str, list[int]]) -> np.ndarray:
    """A smooth trajectory for every character; "never" emotions stay at 0."""
    y0 = np.zeros(len(layout))
    for character in layout.cast:
        others = 3 * (len(layout.cast) - 1)
        felt = _trajectory(rng, layout.beats, len(OCC_EMOTIONS), 0.0, 1.0, 0.05)
        felt[:, never[character]] = 0.0
        shown = felt * rng.uniform(0.4, 1.0, len(OCC_EMOTIONS))
        mood = _trajectory(rng, layout.beats, len(PAD), -1.0, 1.0, 0.05)
        stance = _trajectory(rng, layout.beats, others, -1.0, 1.0, 0.03)
        block = np.concatenate([felt, shown, mood, stance], axis=1)
        first = layout.column(character, "felt", OCC_EMOTIONS[0], 0)
        y0[first:first + block.size] = block.reshape(-1)
    return y0


def _character_rows(rows: _Rows, rng: np.random.Generator, layout: StateLayout, character: str,
                    never: list[int], y0: np.ndarray) -> None:
    """Ranges, display rules, volatility, mood pull and events of one character.

    `y0` is made to obey the caps and display rules, whose bounds a compiled scene has at one
    value for every beat and at 0 (`constraints.display`): widening them instead would put
    rows a hair off 0 where "never", range and display rows meet, vertices no compiled scene has.
    """
    beats = layout.beats
    items = [(layer, e) for layer in ("felt", "shown") for e in OCC_EMOTIONS] + [("mood", d) for d in PAD]
    items += [("stance", f"{o}.{s}") for o in layout.cast if o != character for s in STANCE]
    caps = dict(zip(rng.choice(len(OCC_EMOTIONS), 3, replace=False).tolist(), rng.uniform(0.6, 0.9, 3),
                    strict=True))
    pad = rng.uniform(-0.7, 0.7, (len(OCC_EMOTIONS), len(PAD)))
    pull, band = rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.3)
    display = rng.choice(len(OCC_EMOTIONS), 4, replace=False).tolist()

    def col(layer: str, item: str, b: int) -> int:
        return layout.index(f"{character}.{layer}.{item}@{b + 1}")

    for b in range(beats):
        for layer, item in items:
            lo = 0.0 if layer in ("felt", "shown") else -1.0
            hi = 1.0
            e = OCC_EMOTIONS.index(item) if layer == "felt" else -1
            if e in never:
                hi = 0.0
            elif e in caps:
                hi = float(caps[e])
                y0[col(layer, item, b)] = min(y0[col(layer, item, b)], hi)
            kind = "never" if hi == 0.0 else "max"
            rows.add(f"{character}.range.{layer}.{item}.{kind}@{b + 1}", [col(layer, item, b)], [1.0], lo, hi)
            if b + 1 < beats:
                step = {"felt": 0.35, "shown": 0.35, "mood": 0.3, "stance": 0.2}[layer]
                rows.add(f"{character}.volatility.{layer}.{item}@{b + 1}-{b + 2}",
                         [col(layer, item, b), col(layer, item, b + 1)], [-1.0, 1.0], -step, step)
        for r, e in enumerate(display):
            felt, shown = col("felt", OCC_EMOTIONS[e], b), col("shown", OCC_EMOTIONS[e], b)
            k = rng.uniform(0.3, 0.8)
            bound = (-np.inf, 0.0) if r % 2 == 0 else (0.0, np.inf)
            vals = [-k, 1.0] if r % 2 == 0 else [-1.0, 1.0]
            # de-intensify (shown ≤ k·felt) or intensify (shown ≥ felt)
            y0[shown] = min(y0[shown], k * y0[felt]) if r % 2 == 0 else max(y0[shown], y0[felt])
            name = f"culture:synthetic.display.{OCC_EMOTIONS[e]}.public@{b + 1}"
            rows.add(name, [felt, shown], vals, *bound)
        for d, dim in enumerate(PAD):
            cols = [col("mood", dim, b)] + [col("felt", e, b) for e in OCC_EMOTIONS]
            vals = [1.0, *(-pull * pad[:, d]).tolist()]
            if b > 0:
                cols.append(col("mood", dim, b - 1))
                vals.append(-(1.0 - pull))
            rows.add(f"{character}.mood.{dim}@{b + 1}", cols, vals, -band, band)
    for event in range(3):
        b = int(rng.integers(beats))
        family = rng.choice(len(OCC_EMOTIONS), 3, replace=False)
        cols = [col("felt", OCC_EMOTIONS[e], b) for e in family]
        rows.add(f"event:e{event}.{character}.family>=0.3@{b + 1}", cols, rng.uniform(0.3, 1.0, 3).tolist(),
                 0.3, np.inf)


def _scene_rows(rows: _Rows, rng: np.random.Generator, layout: StateLayout, y0: np.ndarray) -> None:
    """Rows across characters (an empathy coupling per pair of neighbours in the cast) and pins."""
    for a, b in zip(layout.cast, layout.cast[1:], strict=False):
        beat = int(rng.integers(layout.beats))
        cols = [layout.column(a, "felt", "pity", beat), layout.column(b, "felt", "distress", beat)]
        rows.add(f"event:empathy.{a}.{b}@{beat + 1}", cols, [1.0, -0.5], -0.4, np.inf)
    for pin in range(4):
        c = int(rng.integers(len(y0)))
        name = layout.names[c]
        value = round(float(y0[c]), 3)
        if pin % 2 == 0:
            rows.add(f"pin:{name}={value}", [c], [1.0], float(y0[c]), float(y0[c]))
        else:
            rows.add(f"pin:{name}<={value + 0.05}", [c], [1.0], -np.inf, value + 0.05)


def synthetic_scene(characters: int = 8, beats: int = 24, seed: int = 0) -> tuple[Polytope, torch.Tensor]:
    """A scene polytope for `characters` × `beats` and a feasible point of it (float64 `[columns]`)."""
    rng = np.random.default_rng(seed)
    cast = [f"c{i}" for i in range(characters)]
    layout = StateLayout(cast, beats, max_characters=max(characters, 1))
    never = {c: rng.choice(len(OCC_EMOTIONS), 2, replace=False).tolist() for c in cast}
    y0 = _feasible_point(rng, layout, never)
    rows = _Rows()
    for character in cast:
        _character_rows(rows, rng, layout, character, never[character], y0)
    _scene_rows(rows, rng, layout, y0)
    return rows.polytope(layout, y0), torch.from_numpy(y0)
