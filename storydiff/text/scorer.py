"""Zero-shot scoring of the affect a speech shows: MiniLM similarity to hand-written prototype sentences.

Each class (22 OCC emotions and `neutral`) scores a speech by the mean cosine
similarity of its three nearest prototypes; a softmax over the 23 scores at a
temperature gives probabilities, and `shown` is the emotion part of it. The
neutral class takes the mass of plain, informational speech, so a calm line
scores low on every emotion. PAD is scored the same way from the poles of each
dimension against neutral: `p(positive pole) - p(negative pole)`, in [-1, 1].
The temperature and the neutral offset were fitted (class-balanced log-loss) on the dev lines
of tests/data/scorer_gold.jsonl, from plays that are not held out
(`python benchmarks/scorer_eval.py --fit`). English only.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch

from ..embedding import embed
from ..vocab import OCC_EMOTIONS, PAD
from .prototypes import EMOTION_PROTOTYPES, NEUTRAL_PROTOTYPES, PAD_PROTOTYPES

NEUTRAL = "neutral"
CLASSES: tuple[str, ...] = (*OCC_EMOTIONS, NEUTRAL)
TOP_K = 3
TEMPERATURE = 0.0631
NEUTRAL_BIAS = 0.02

Embedder = Callable[[list[str]], torch.Tensor]


class AffectScorer:
    """Prototype embeddings computed once; every method takes a batch of texts."""

    def __init__(self, embedder: Embedder = embed, temperature: float = TEMPERATURE,
                 neutral_bias: float = NEUTRAL_BIAS):
        self.embed = embedder
        self.temperature = temperature
        self.neutral_bias = neutral_bias
        groups = [EMOTION_PROTOTYPES[e] for e in OCC_EMOTIONS] + [NEUTRAL_PROTOTYPES]
        groups += [pole for d in PAD for pole in PAD_PROTOTYPES[d]]
        vectors = embedder([s for g in groups for s in g])
        self._prototypes = list(torch.split(vectors, [len(g) for g in groups]))

    def similarities(self, x: torch.Tensor) -> torch.Tensor:
        """`[n, 23 + 6]` class similarities of unit embeddings: emotions, neutral, then PAD poles (+, -)."""
        return torch.stack([(x @ p.T).topk(min(TOP_K, len(p)), dim=1).values.mean(1) for p in self._prototypes], 1)

    def class_probabilities(self, sims: torch.Tensor) -> torch.Tensor:
        """`[n, 23]` softmax over the emotions and neutral."""
        logits = sims[:, :len(CLASSES)].clone()
        logits[:, -1] += self.neutral_bias
        return torch.softmax(logits / self.temperature, dim=1)

    def pad_scores(self, sims: torch.Tensor) -> torch.Tensor:
        """`[n, 3]` pleasure, arousal, dominance in [-1, 1]."""
        neutral = sims[:, len(CLASSES) - 1] + self.neutral_bias
        poles = sims[:, len(CLASSES):].reshape(-1, len(PAD), 2)
        logits = torch.cat([poles, neutral[:, None, None].expand(-1, len(PAD), 1)], dim=2)
        p = torch.softmax(logits / self.temperature, dim=2)
        return p[..., 0] - p[..., 1]

    def shown(self, texts: list[str]) -> torch.Tensor:
        """`[n, 22]` shown emotion intensities in [0, 1], in OCC order."""
        return self.class_probabilities(self.similarities(self.embed(texts)))[:, :len(OCC_EMOTIONS)]

    def pad(self, texts: list[str]) -> torch.Tensor:
        """`[n, 3]` shown pleasure, arousal, dominance; not yet checked against labelled lines."""
        return self.pad_scores(self.similarities(self.embed(texts)))

    def labels(self, texts: list[str]) -> list[str]:
        """The dominant shown emotion of each text, or 'neutral'."""
        probs = self.class_probabilities(self.similarities(self.embed(texts)))
        return [CLASSES[i] for i in probs.argmax(1).tolist()]


@lru_cache(maxsize=1)
def default_scorer() -> AffectScorer:
    """The MiniLM scorer with the fitted constants, built once per process."""
    return AffectScorer()


def score_shown(texts: list[str]) -> torch.Tensor:
    """`[n, 22]` shown OCC emotions in [0, 1] for a batch of speeches (embedded in batches of 64)."""
    return default_scorer().shown(texts)


def score_pad(texts: list[str]) -> torch.Tensor:
    """`[n, 3]` pleasure, arousal, dominance in [-1, 1] for a batch of speeches."""
    return default_scorer().pad(texts)
