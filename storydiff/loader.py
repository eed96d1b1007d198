"""Writers' files → typed models, each element keeping where it was written (DESIGN §3).

Loading runs three layers and reports every problem they find together:
`xmlio` (safe parsing and the XSD), the builders here (XML → pydantic), and
`checks` (references between files, duplicates, contradictions).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from importlib.resources import files
from pathlib import Path

import pydantic
from lxml import etree

from . import checks, xmlio
from .errors import Problem, StorydiffError, ValidationError
from .models import (
    Appraisal,
    Behaviour,
    Cast,
    Character,
    Culture,
    DisplayRule,
    EmotionRange,
    Event,
    Located,
    Mood,
    MoodDynamics,
    Personality,
    Pin,
    Relation,
    Situation,
    Source,
    Story,
    StoryScene,
    Volatility,
)

Model = Character | Culture | Situation | Story
LIBRARY_PATTERNS = ("*.character.xml", "*.culture.xml")


# ---------------------------------------------------------------- XML → models

def _source(doc: xmlio.Document, element: etree._Element) -> Source:
    line, column = doc.position(element)
    return Source(path=doc.path, line=line, column=column, attributes=tuple(doc.attribute_positions(element)))


def _text(element: etree._Element) -> str:
    """Element text with XML whitespace collapsed, as xs:token reads it: writers wrap long lines."""
    return re.sub(r"[ \t\r\n]+", " ", "".join(element.itertext())).strip(" ")


def _children(element: etree._Element) -> list[tuple[str, etree._Element]]:
    return [(etree.QName(c).localname, c) for c in element if isinstance(c.tag, str)]


def _attributes(element: etree._Element, *leave_out: str) -> dict[str, str]:
    """Attributes as model fields: `max-step` → `max_step`; values stripped as XSD does."""
    return {k.replace("-", "_"): v.strip() for k, v in element.attrib.items() if k not in leave_out}


def _build(cls: type[Located], doc: xmlio.Document, element: etree._Element, **fields) -> Located:
    """One model; a value the model refuses becomes a Problem at the element, never a traceback."""
    try:
        return cls(source=_source(doc, element), **fields)
    except pydantic.ValidationError as e:
        tag = etree.QName(element).localname
        raise ValidationError([doc.problem(element, "bad-value", f"<{tag}> {'.'.join(map(str, err['loc']))}: "
                                                                 f"{err['msg']}") for err in e.errors()]) from None


def _from_attributes(cls: type[Located]) -> Callable[[xmlio.Document, etree._Element], Located]:
    return lambda doc, el: _build(cls, doc, el, **_attributes(el))


_CHARACTER_SINGLES = {"personality": (Personality, "personality"), "mood": (Mood, "mood"),
                      "mood-dynamics": (MoodDynamics, "mood_dynamics")}
_CHARACTER_LISTS = {
    "range": ("ranges", _from_attributes(EmotionRange)),
    "volatility": ("volatility", _from_attributes(Volatility)),
    "display-rule": ("display_rules", _from_attributes(DisplayRule)),
    "relation": ("relations", _from_attributes(Relation)),
    "behaviour": ("behaviours", lambda doc, el: _build(Behaviour, doc, el, text=_text(el), **_attributes(el))),
}


def _character(doc: xmlio.Document) -> Character:
    fields: dict = {name: [] for name, _ in _CHARACTER_LISTS.values()}
    for tag, el in _children(doc.root):
        if tag in ("name", "description"):
            fields[tag] = _text(el)
        elif tag in _CHARACTER_SINGLES:
            cls, name = _CHARACTER_SINGLES[tag]
            fields[name] = _build(cls, doc, el, **_attributes(el))
        else:
            name, build = _CHARACTER_LISTS[tag]
            fields[name].append(build(doc, el))
    return _build(Character, doc, doc.root, **_attributes(doc.root, "version"), **fields)


def _culture(doc: xmlio.Document) -> Culture:
    fields: dict = {"display_rules": [], "hofstede": Culture.model_fields["hofstede"].default_factory()}
    for tag, el in _children(doc.root):
        if tag in ("name", "description"):
            fields[tag] = _text(el)
        elif tag == "hofstede":
            fields["hofstede"].update({k: float(v) for k, v in el.attrib.items()})
        else:
            fields["display_rules"].append(_build(DisplayRule, doc, el, **_attributes(el)))
    return _build(Culture, doc, doc.root, **_attributes(doc.root, "version"), **fields)


def _event(doc: xmlio.Document, element: etree._Element) -> Event:
    fields: dict = {"appraisals": []}
    for tag, el in _children(element):
        if tag == "text":
            fields["text"] = _text(el)
        else:
            fields["appraisals"].append(_build(Appraisal, doc, el, **_attributes(el)))
    return _build(Event, doc, element, **_attributes(element), **fields)


def _situation(doc: xmlio.Document) -> Situation:
    fields: dict = {"cast": [], "cast_sources": [], "events": [], "pins": [], "path": doc.path}
    for tag, el in _children(doc.root):
        if tag == "title":
            fields["title"] = _text(el)
        elif tag == "setting":
            fields.update(setting=_text(el), **_attributes(el))
        elif tag == "cast":
            members = [m for _, m in _children(el)]
            fields["cast"] = [m.get("ref").strip() for m in members]
            fields["cast_sources"] = [_source(doc, m) for m in members]
        elif tag == "beats":
            fields["beats"] = el.get("count").strip()
        elif tag == "events":
            fields["events"] = [_event(doc, e) for _, e in _children(el)]
        else:
            fields["pins"] = [_build(Pin, doc, p, **_attributes(p)) for _, p in _children(el)]
    return _build(Situation, doc, doc.root, **_attributes(doc.root, "version"), **fields)


def _scene(doc: xmlio.Document, element: etree._Element) -> StoryScene:
    fields = _attributes(element)
    if "carry" in fields:
        fields["carry"] = fields["carry"].split()
    return _build(StoryScene, doc, element, **fields)


def _story(doc: xmlio.Document) -> Story:
    fields: dict = {"scenes": []}
    for tag, el in _children(doc.root):
        if tag == "title":
            fields["title"] = _text(el)
        else:
            fields["scenes"].append(_scene(doc, el))
    return _build(Story, doc, doc.root, **_attributes(doc.root, "version"), **fields)


_BUILDERS: dict[str, Callable[[xmlio.Document], Model]] = {
    "character": _character, "culture": _culture, "situation": _situation, "story": _story,
}


def read_model(path: str | Path) -> Model:
    """One file as its model (kind from the root element), schema-checked, without cross-file checks."""
    doc = xmlio.read(path)
    return _BUILDERS[doc.kind](doc)


# ---------------------------------------------------------------- loading with checks

def _raise_if(problems: Iterable[Problem]) -> None:
    unique = list(dict.fromkeys(problems))
    if unique:
        raise ValidationError(sorted(unique, key=lambda p: (p.path, p.line, p.column)))


def _wrong_kind(path: Path, found: str, wanted: str) -> Problem:
    return Problem(str(path), 1, 1, "wrong-kind", f"expected {wanted} file, found a <{found}> file")


def _read_library_file(path: Path) -> tuple[Model | None, list[Problem]]:
    try:
        model = read_model(path)
    except ValidationError as e:
        return None, e.problems
    if isinstance(model, Character):
        return model, checks.check_character(model)
    if isinstance(model, Culture):
        return model, checks.check_culture(model)
    return None, [_wrong_kind(path, type(model).__name__.lower(), "a <character> or <culture>")]


def _first_by_id(models: list) -> dict:
    found: dict = {}
    for model in models:
        found.setdefault(model.id, model)
    return found


def load_cast(paths: Iterable[str | Path], closed: bool = True, root: str | None = None) -> Cast:
    """Characters and cultures from the given files, cross-checked (see `checks.check_cast`).

    References between files are checked only when every file could be read: a
    culture that failed to parse would otherwise show up again as "not defined".
    """
    paths = [Path(p) for p in paths]
    models, problems = [], []
    for path in paths:
        model, found = _read_library_file(path)
        problems += found
        models += [model] if model else []
    characters = [m for m in models if isinstance(m, Character)]
    cultures = [m for m in models if isinstance(m, Culture)]
    problems += checks.duplicates(characters, lambda c: c.id, "character id", "id", code="duplicate-id")
    problems += checks.duplicates(cultures, lambda c: c.id, "culture id", "id", code="duplicate-id")
    cast = Cast(characters=_first_by_id(characters), cultures=_first_by_id(cultures), root=root)
    if len(models) == len(paths):
        problems += checks.check_cast(cast, closed)
    _raise_if(problems)
    return cast


def library_files(folder: str | Path) -> list[Path]:
    """Every character and culture file below a folder, in a stable order."""
    found = {p for pattern in LIBRARY_PATTERNS for p in Path(folder).rglob(pattern) if p.is_file()}
    return sorted(found)


def _missing(path: Path) -> ValidationError:
    return ValidationError([Problem(str(path), 1, 1, "missing-file", f"no such file or folder: {path}")])


def load_characters(path: str | Path) -> Cast:
    """A library (a folder, recursively) or one character file with the cultures beside it.

    A folder is a whole library, so relations must name characters in it; a single
    file is a cast of one whose relations may name characters defined elsewhere.
    Raises ValidationError listing every problem, each with its position.
    """
    path = Path(path)
    if path.is_dir():
        return load_cast(library_files(path), closed=True, root=str(path))
    if not path.is_file():
        raise _missing(path)
    cultures = [p for p in library_files(path.parent) if p.name.endswith(".culture.xml")]
    extra = [p for p in cultures if p.resolve() != path.resolve()]
    return load_cast([path, *extra], closed=False, root=str(path.parent))


def _read_kind(path: Path, kind: str) -> Model:
    if not path.is_file():
        raise _missing(path)
    model = read_model(path)
    if type(model).__name__.lower() != kind:
        raise ValidationError([_wrong_kind(path, type(model).__name__.lower(), f"a <{kind}>")])
    return model


def load_situation(path: str | Path, cast: Cast) -> Situation:
    """A situation checked against its cast (members, events, beats, pins)."""
    situation = _read_kind(Path(path), "situation")
    _raise_if(checks.check_situation(situation, cast))
    situation.library = cast
    return situation


def scene_path(story_path: str | Path, href: str) -> Path:
    """Where a story's scene file is: `href` is relative to the story file."""
    return Path(os.path.normpath(Path(story_path).parent / href))


def load_story(path: str | Path, cast: Cast) -> Story:
    """A story with each of its situations loaded (in order) into `story.situations`."""
    story = _read_kind(Path(path), "story")
    problems = []
    for scene in story.scenes:
        target = scene_path(path, scene.href)
        if not target.is_file():
            problems.append(checks.problem_at(scene, "missing-file", (
                f"scene file {scene.href} not found (looked for {target}); fix href, relative to this story"),
                "href"))
            continue
        try:
            story.situations.append(load_situation(target, cast))
        except ValidationError as e:
            problems += e.problems
    _raise_if(problems)
    return story


# ---------------------------------------------------------------- where characters live

def bundled_library() -> Path:
    """The example library shipped in the package (storydiff.characters)."""
    return Path(str(files("storydiff.characters")))


def _relative(path: Path) -> Path:
    """A path as a writer would type it: relative to the working folder when inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def find_characters_dir(situation_path: str | Path, explicit: str | Path | None = None) -> Path:
    """Where a situation's characters live (DESIGN §3).

    `explicit` (--characters DIR) wins; else the nearest folder at or above the
    situation that holds *.character.xml files; else the bundled library.
    """
    if explicit is not None:
        folder = Path(explicit)
        if not folder.is_dir():
            raise StorydiffError(f"--characters {explicit}: no such folder")
        return folder
    start = Path(situation_path).absolute().parent
    for folder in (start, *start.parents):
        if any(p.is_file() for p in folder.glob("*.character.xml")):
            return _relative(folder)
    return bundled_library()
