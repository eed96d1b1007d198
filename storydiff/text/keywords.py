"""A keyword baseline for the scorer: a few word stems per emotion, written by hand.

It exists so the zero-shot scorer has something simple to beat (benchmarks/scorer_eval.py).
Written before the gold lines were read. A stem matches a word that starts with it.
"""
from __future__ import annotations

import re

from ..vocab import OCC_EMOTIONS

KEYWORDS: dict[str, tuple[str, ...]] = {
    "admiration": ("admir", "noble", "worthy", "valiant", "brave", "excellent", "honourable", "virtuous"),
    "anger": ("angry", "anger", "rage", "wrath", "fury", "furious", "villain", "damn", "dare", "slave"),
    "disappointment": ("disappoint", "hoped", "expected", "in vain", "let down", "dashed"),
    "distress": ("alas", "woe", "grief", "sorrow", "wretch", "weep", "misery", "miserable", "tears"),
    "fear": ("fear", "afraid", "dread", "terror", "tremble", "frighten", "scared", "quake"),
    "fears-confirmed": ("as i feared", "i knew it", "i feared", "too true", "it is so"),
    "gloating": ("serves him right", "ha, ha", "ha! ha", "rejoice at", "let him suffer"),
    "gratification": ("i have won", "my plan", "i did it", "prosper", "succeed"),
    "gratitude": ("thank", "grateful", "beholding", "indebted", "bless you", "obliged"),
    "happy-for": ("congratulat", "glad for", "happy for", "joy of", "well deserved"),
    "hate": ("hate", "loathe", "abhor", "detest", "despise", "odious", "curse", "cursed"),
    "hope": ("hope", "pray", "perhaps", "may yet", "wish", "trust"),
    "joy": ("joy", "happy", "merry", "delight", "glad", "rejoice", "laugh"),
    "love": ("love", "dear", "sweet", "darling", "kiss", "adore", "heart"),
    "pity": ("pity", "poor", "sorry for", "mercy", "compassion"),
    "pride": ("proud", "pride", "my honour", "my name", "none but i"),
    "relief": ("relief", "thank god", "thank heaven", "safe", "at last"),
    "remorse": ("forgive me", "pardon me", "repent", "regret", "guilt", "my fault", "sorry"),
    "reproach": ("shame on", "fie", "for shame", "how could you", "unkind", "you should"),
    "resentment": ("envy", "not fair", "unfair", "why should he", "favour"),
    "satisfaction": ("content", "satisfied", "as i wished", "as planned", "justice"),
    "shame": ("ashamed", "blush", "disgrace", "dishonour", "embarrass", "mortif"),
}

_PATTERNS = {e: re.compile(r"\b(?:" + "|".join(re.escape(k) for k in ks) + r")", re.IGNORECASE)
             for e, ks in KEYWORDS.items()}


def keyword_label(text: str) -> str:
    """The emotion with the most keyword hits (ties: first in OCC order), or 'neutral' with none."""
    hits = {e: len(p.findall(text)) for e, p in _PATTERNS.items()}
    best = max(OCC_EMOTIONS, key=lambda e: hits[e])
    return best if hits[best] else "neutral"


assert tuple(KEYWORDS) == OCC_EMOTIONS
