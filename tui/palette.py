"""One glyph and one colour per emotion, so the grid reads with colour and without it.

Colours follow the emotion's family in OCC (Ortony, Clore & Collins 1988): hostile
emotions red, prospect-based ones violet, self-conscious and sorrowful ones blue,
well-being and fortunes-of-others pleasures gold and green, attraction rose.
Glyphs are single-width symbols, distinct within each family.
"""
from __future__ import annotations

GLYPHS: dict[str, str] = {
    "admiration": "✦", "anger": "▲", "disappointment": "▽", "distress": "▼", "fear": "◆",
    "fears-confirmed": "◈", "gloating": "◐", "gratification": "◉", "gratitude": "♢", "happy-for": "♡",
    "hate": "×", "hope": "↑", "joy": "☼", "love": "♥", "pity": "◇", "pride": "⊕", "relief": "○",
    "remorse": "↓", "reproach": "⊘", "resentment": "▪", "satisfaction": "●", "shame": "◒",
}

COLOURS: dict[str, str] = {
    "anger": "#ff5f5f", "hate": "#d70000", "reproach": "#ff8787", "resentment": "#d75f5f",
    "fear": "#af87ff", "fears-confirmed": "#8757d7", "hope": "#87d7ff", "relief": "#5fd7af",
    "distress": "#5f87d7", "disappointment": "#87afd7", "remorse": "#5f5faf", "shame": "#8787af",
    "pity": "#87afaf",
    "joy": "#ffd75f", "satisfaction": "#d7d75f", "gratification": "#ffaf5f", "gloating": "#d7af00",
    "happy-for": "#afd75f", "admiration": "#87d787", "gratitude": "#5faf5f", "pride": "#ffaf00",
    "love": "#ff87af",
}

# Below this, nothing shown is worth naming (the beat sheet's floor, storydiff.render).
FAINT = 0.15
FAINT_GLYPH = "·"
GAP_MARK = "≠"   # felt and shown differ (subtext)


def intensity(value: float) -> str:
    """`.62`, `1.0`: three characters for any value in [0, 1]."""
    return "1.0" if value >= 0.995 else f"{value:.2f}"[1:]
