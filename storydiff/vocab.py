"""Vocabularies shared by every stage: names only, no numbers.

The emotion and mood names are W3C EmotionML 1.0's `occ-categories` and
`pad-dimensions` vocabularies (https://www.w3.org/TR/emotion-voc/), so the
EmotionML export needs no translation table.
"""
from __future__ import annotations

# Ortony, Clore & Collins (1988) as listed in EmotionML's `occ-categories`.
OCC_EMOTIONS: tuple[str, ...] = (
    "admiration", "anger", "disappointment", "distress", "fear", "fears-confirmed",
    "gloating", "gratification", "gratitude", "happy-for", "hate", "hope", "joy",
    "love", "pity", "pride", "relief", "remorse", "reproach", "resentment",
    "satisfaction", "shame",
)
# Mehrabian (1996) pleasure-arousal-dominance, EmotionML `pad-dimensions`.
PAD: tuple[str, ...] = ("pleasure", "arousal", "dominance")
# Costa & McCrae's five factors; the XML stores neuroticism (not stability).
BIG_FIVE: tuple[str, ...] = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
# Hofstede, Hofstede & Minkov (2010), Cultures and Organizations, 3rd ed.: six dimensions, scores 0-100.
HOFSTEDE: tuple[str, ...] = (
    "power-distance", "individualism", "masculinity", "uncertainty-avoidance",
    "long-term-orientation", "indulgence",
)
# Interpersonal stance toward another character (liking/dominance after Mehrabian; trust added).
STANCE: tuple[str, ...] = ("liking", "dominance", "trust")
# Who is watching, for display rules (Matsumoto 1990; Matsumoto et al. 2005 DRAI).
AUDIENCES: tuple[str, ...] = ("public", "private", "superior", "inferior", "intimate")
# Ekman & Friesen (1969) display-rule kinds, plus `max` (a ceiling) and `simulate`.
DISPLAY_KINDS: tuple[str, ...] = ("max", "de-intensify", "intensify", "neutralise", "mask", "simulate")
# The per-(character, beat) blocks of the scene state, in column order (DESIGN §2).
LAYERS: tuple[str, ...] = ("felt", "shown", "mood", "stance")
