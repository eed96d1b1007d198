"""Checking the scorer against hand-labelled lines, next to two baselines a scorer must beat.

The gold file (tests/data/scorer_gold.jsonl) holds one line of a play per row with
its dominant shown emotion or `neutral`, labelled by hand before the scorer was run.
Rows with `split: test` come from the held-out plays; `split: dev` rows come from
training plays and are the only ones the scorer's constants were fitted on.
Macro-F1 averages over the emotions present in the split (neutral is not averaged,
but predicting neutral for an emotional line counts as a miss).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from .keywords import keyword_label
from .scorer import CLASSES, NEUTRAL


@dataclass(frozen=True)
class GoldLine:
    split: str
    play: str
    act: str
    scene: str
    speaker: str
    text: str
    label: str


@dataclass(frozen=True)
class Report:
    """Per-label recall and macro-F1 for each named predictor."""

    labels: tuple[str, ...]
    recall: dict[str, dict[str, float]]
    macro_f1: dict[str, float]
    accuracy: dict[str, float]


def load_gold(path: Path | str, split: str = "test") -> list[GoldLine]:
    """Rows of one split; raises ValueError on a label outside the 22 emotions and neutral."""
    lines = []
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        row = json.loads(raw)
        if row["label"] not in CLASSES:
            raise ValueError(f"{path}:{n}: unknown label {row['label']!r}")
        if row["split"] == split:
            lines.append(GoldLine(row["split"], row["play"], row["act"], row["scene"], row["speaker"],
                                  row["text"], row["label"]))
    return lines


def macro_f1(gold: list[str], pred: list[str], labels: tuple[str, ...]) -> float:
    scores = []
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred))
        fp = sum(p == label != g for g, p in zip(gold, pred))
        fn = sum(g == label != p for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def recall(gold: list[str], pred: list[str], label: str) -> float:
    hits = [p == label for g, p in zip(gold, pred) if g == label]
    return sum(hits) / len(hits) if hits else 0.0


def majority_labels(lines: list[GoldLine]) -> list[str]:
    """Predict the most frequent gold label for every line."""
    top = Counter(line.label for line in lines).most_common(1)[0][0]
    return [top] * len(lines)


def keyword_labels(lines: list[GoldLine]) -> list[str]:
    return [keyword_label(line.text) for line in lines]


def evaluate(lines: list[GoldLine], predictions: dict[str, list[str]]) -> Report:
    """Score each predictor's labels against the gold lines."""
    gold = [line.label for line in lines]
    present = tuple(c for c in CLASSES if c != NEUTRAL and c in gold)
    shown = (*present, NEUTRAL) if NEUTRAL in gold else present
    return Report(
        labels=shown,
        recall={name: {label: recall(gold, pred, label) for label in shown} for name, pred in predictions.items()},
        macro_f1={name: macro_f1(gold, pred, present) for name, pred in predictions.items()},
        accuracy={name: sum(g == p for g, p in zip(gold, pred)) / len(gold) for name, pred in predictions.items()},
    )


def fit_calibration(sims: torch.Tensor, labels: list[str]) -> tuple[float, float]:
    """Temperature and neutral offset minimising class-balanced log-loss of the 23-way softmax.

    Balanced, because the gold lines were picked to cover every emotion: their label
    frequencies say how the set was built, not how often plays show each emotion.
    A grid search, so the fit is exact and reproducible; `sims` are the first 23
    columns of `AffectScorer.similarities`.
    """
    target = torch.tensor([CLASSES.index(label) for label in labels])
    counts = torch.bincount(target, minlength=len(CLASSES)).float()
    weight = torch.where(counts > 0, 1 / counts.clamp_min(1), torch.zeros_like(counts))
    best = (float("inf"), 0.0, 0.0)
    for temperature in torch.logspace(-2.5, -0.5, 41).tolist():
        for bias in torch.linspace(-0.1, 0.1, 41).tolist():
            logits = sims[:, :len(CLASSES)].clone()
            logits[:, -1] += bias
            loss = float(torch.nn.functional.cross_entropy(logits / temperature, target, weight=weight))
            best = min(best, (loss, temperature, bias))
    return round(best[1], 4), round(best[2], 3)
