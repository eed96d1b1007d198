"""Fountain (https://fountain.io/syntax): the scene as a screenplay draft a writer opens in any editor.

storydiff samples affect and behaviour, not words, so the draft is built the
way a writer blocks a scene before dialogue exists: behaviours are action
lines, each character gets a cue, a parenthetical carries what they show, and
the dialogue is a bracketed placeholder naming what the line must do. Subtext
and mood turns are `[[notes]]`, which editors show and print skips. Beats are
`#` sections, so the outline view lists them. Writer text is escaped or forced
to be action, so that none of it reads as Fountain markup.
"""
from __future__ import annotations

import re
from datetime import date

from ..render import (
    cues,
    hidden,
    mood_notes,
    performed,
    provenance_summary,
    regenerate_command,
    scene_labels,
    shown_emotions,
    subtext_summary,
)
from ..scene import CharacterBeat, Scene
from .scenes import SceneOrScenes, as_list

# How an emotion reads in a parenthetical: "(openly angry)".
ADJECTIVES: dict[str, str] = {
    "admiration": "admiring", "anger": "angry", "disappointment": "disappointed", "distress": "distressed",
    "fear": "afraid", "fears-confirmed": "stricken", "gloating": "gloating", "gratification": "gratified",
    "gratitude": "grateful", "happy-for": "glad for them", "hate": "hateful", "hope": "hopeful",
    "joy": "joyful", "love": "tender", "pity": "pitying", "pride": "proud", "relief": "relieved",
    "remorse": "remorseful", "reproach": "reproachful", "resentment": "resentful",
    "satisfaction": "satisfied", "shame": "ashamed",
}
# Intensity bands for the parenthetical's adverb: below LIGHT "a touch", above STRONG "openly".
LIGHT, STRONG = 0.35, 0.65

# Words that place a setting indoors or outdoors; the first one found decides INT. or EXT.
INTERIOR = frozenset([
    "room", "kitchen", "office", "hall", "cabin", "wheelhouse", "cellar", "attic", "bedroom", "parlour", "parlor",
    "house", "church", "chapel", "shop", "tavern", "pub", "inn", "courtroom", "chamber", "corridor", "study",
    "library", "inside", "interior", "galley", "cottage", "apartment", "bathroom", "ward", "car", "carriage",
])
EXTERIOR = frozenset([
    "deck", "street", "beach", "harbour", "harbor", "quay", "dock", "docks", "pier", "sea", "shore", "field",
    "road", "garden", "yard", "square", "outside", "exterior", "roof", "rooftop", "cliff", "forest", "woods",
    "hill", "market", "jetty", "breakwater", "slipway", "lane", "alley", "cemetery", "graveyard", "boatyard",
])
TIMES = ("night", "midnight", "dawn", "first light", "daybreak", "sunrise", "morning", "day", "midday", "noon",
         "afternoon", "twilight", "dusk", "sunset", "nightfall", "evening")
_TIME = re.compile(r"\b(" + "|".join(TIMES) + r")\b")
# Where the place named at the start of a setting ends: a clause, a preposition, or a sentence end (a stop
# before a space; `_ends_place` tells a sentence's from an abbreviation's).
_LOCATION_END = re.compile(r"[,;]|[.!?:](?=\s)| at | in | on | during | as | while ")
# Capitalised words whose full stop abbreviates, not ends a sentence: "St. Mary's church", "No. 9 Quay
# Street", "Mr. and Mrs. Voss's kitchen". Single capitals are initials ("J. M. Barrie's study").
ABBREVIATIONS = frozenset([
    "St", "Ste", "Mt", "Ft", "Pt", "No", "Nos", "Mr", "Mrs", "Ms", "Dr", "Rev", "Fr", "Sr", "Jr", "Capt", "Col",
    "Gen", "Lt", "Sgt", "Prof", "Messrs", "Co", "Bros", "Ave", "Rd", "Sq",
])
# A one-line paragraph that Fountain would read as something other than action.
_NOT_ACTION = re.compile(r"^((INT|I)\.?/(EXT|E)|INT|EXT|EST)[ .]|^[.!@#=~>\[]|TO:$", re.IGNORECASE)
# Fountain follows Markdown: a backslash makes the punctuation after it literal. Every `*` and `_` is
# escaped (emphasis, underline, and `/* boneyard */`; a lone one is harmless, but parsers disagree on which
# pairs they read, and screenplain underlines inside words), and so is a backslash of the writer's that
# would otherwise escape what follows it.
_MARKUP = re.compile(r"[*_]|\\(?=[!-/:-@\[-`{-~])")


def to_fountain(scenes: SceneOrScenes, draft_date: date | None = None) -> str:
    """A Fountain screenplay: title page with provenance, then one scene heading per scene."""
    many = as_list(scenes)
    out = _title_page(many, draft_date or date.today())
    for scene, label in zip(many, scene_labels(many)):
        section = f"{scene.title or scene.situation}" + (f" — {label.text}" if len(many) > 1 else "")
        out += [f"# {_plain(section)}", "", scene_heading(scene.setting, scene.title or scene.situation), ""]
        if scene.setting:
            out += [_action(scene.setting), ""]
        out += _beats(scene)
    return "\n".join(out).rstrip("\n") + "\n"


def scene_heading(setting: str, fallback: str = "") -> str:
    """`INT. WHEELHOUSE OF THE PILOT BOAT - NIGHT`, guessed from the setting; a forced `.HEADING` if unsure."""
    words = re.findall(r"[a-z]+", setting.lower())
    where = next((w for w in words if w in INTERIOR or w in EXTERIOR), None)
    when = m.group(1) if (m := _TIME.search(setting.lower())) else None
    text = f"{setting.strip()} "
    end = next((m.start() for m in _LOCATION_END.finditer(text) if _ends_place(text, m)), len(text))
    place = re.sub(r"^(the|a|an)\s+", "", text[:end].strip(), flags=re.IGNORECASE)
    place = _plain(place.upper() or (fallback or "SCENE").upper())
    if where is None:
        return f".{place}" + (f" - {when.upper()}" if when else "")
    prefix = "INT." if where in INTERIOR else "EXT."
    return f"{prefix} {place}" + (f" - {when.upper()}" if when else "")


def _ends_place(text: str, end: re.Match[str]) -> bool:
    """Whether the place ends here: not at the full stop of an abbreviation or an initial."""
    found = re.search(r"\b[A-Za-z]+$", text[: end.start()]) if end.group() == "." else None
    if found is None:
        return True
    word = found.group()
    return not (word[0].isupper() and (len(word) == 1 or word.title() in ABBREVIATIONS))


def parenthetical(cell: CharacterBeat) -> str:
    """What the character shows, as an actor's note: `(openly angry, a touch proud)`."""
    words = []
    for emotion, value in shown_emotions(cell)[:2]:
        adverb = "a touch " if value < LIGHT else "openly " if value > STRONG else ""
        words.append(adverb + ADJECTIVES[emotion])
    return f"({', '.join(words) or 'evenly'})"


def placeholder(cell: CharacterBeat) -> str:
    """The dialogue the writer replaces, saying what the line has to do."""
    acts = [f"plays {e}" for e, _, _ in performed(cell)[:1]]
    if not acts:
        shown = shown_emotions(cell)
        acts = [f"lets {shown[0][0]} show" if shown else "gives nothing away"]
    acts += [f"hides {e}" for e, _ in hidden(cell)[:1]]
    return f"[a line that {', '.join(acts)}]"


def _title_page(scenes: list[Scene], draft: date) -> list[str]:
    titles = list(dict.fromkeys(s.title or s.situation for s in scenes))
    notes = ["Dialogue in [brackets] is a placeholder: storydiff samples affect and behaviour, not words."]
    for scene in scenes:
        notes += [provenance_summary(scene.provenance), f"regenerate: {regenerate_command(scene.provenance)}"]
    return [f"Title: {_plain(' / '.join(titles))}", "Credit: Beats sampled with",
            f"Author: storydiff {scenes[0].provenance.storydiff}", f"Draft date: {draft.isoformat()}",
            "Notes:", *(f"    {_plain(n)}" for n in notes), ""]


def _beats(scene: Scene) -> list[str]:
    tag, moods = cues(scene), mood_notes(scene)
    out: list[str] = []
    for beat in range(1, scene.beats + 1):
        out += [f"## Beat {beat}", ""]
        out += [line for e in scene.events if e.beat == beat for line in (_action(e.text or e.id), "")]
        for cid in scene.cast:
            cell = scene.cell(cid, beat)
            out += [_action(f"{tag[cid]} {cell.behaviour_text or 'waits'}."), ""]
            out += [_cue(tag[cid]), parenthetical(cell), placeholder(cell), ""]
            note = "; ".join(filter(None, [_mood(moods.get((cid, beat))), _subtext(cell)]))
            if note:
                out += [f"[[{tag[cid]} — {note}]]", ""]
    return out


def _mood(word: str | None) -> str | None:
    return f"mood: {word}" if word else None


def _subtext(cell: CharacterBeat) -> str | None:
    summary = subtext_summary(cell)
    return f"subtext: {summary}" if summary else None


def _cue(name: str) -> str:
    """A character cue; `@` forces one that Fountain would not recognise (no capital letters)."""
    name = _plain(name)
    return name if name.isupper() else f"@{name}"


def _action(text: str) -> str:
    """An action line; `!` forces one that Fountain would read as a heading, cue or transition."""
    text = _plain(text)
    return f"!{text}" if text.isupper() or _NOT_ACTION.search(text) else text


def _plain(text: str) -> str:
    """Writer text on one line with no Fountain markup: emphasis escaped (`_MARKUP`), notes broken."""
    text = _MARKUP.sub(lambda m: "\\" + m.group(), " ".join(text.split()))
    return text.replace("[[", "[ [").replace("]]", "] ]")
