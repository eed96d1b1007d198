"""Models → XML in the writers' formats, so anything loaded (or generated) can be saved and read back.

The output follows the XSD's element order, writes every value explicitly (so a
file does not change meaning if a default changes) and never uses exponents,
which xs:decimal refuses.
"""
from __future__ import annotations

from decimal import Decimal

from lxml import etree

from .models import Character, Culture, Located, Situation, Story
from .xmlio import NAMESPACE, VERSION


def _number(x: float) -> str:
    """Shortest text that reads back as the same float, without an exponent."""
    text = format(Decimal(repr(float(x))), "f")
    return text.removesuffix(".0")


def _value(x: object) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, float)):
        return _number(x)
    return " ".join(x) if isinstance(x, list) else str(x)


def _element(parent: etree._Element | None, tag: str, text: str | None = None, **attributes) -> etree._Element:
    """One element; attributes given as None are left out, `max_step` is written `max-step`."""
    name = f"{{{NAMESPACE}}}{tag}"
    element = etree.Element(name, nsmap={None: NAMESPACE}) if parent is None else etree.SubElement(parent, name)
    for key, value in attributes.items():
        if value is not None:
            element.set(key.replace("_", "-"), _value(value))
    if text is not None:
        element.text = text
    return element


def _fields(model: Located, *names: str) -> dict:
    return {name: getattr(model, name) for name in names}


def _root(model: Character | Culture | Situation | Story, tag: str, **attributes) -> etree._Element:
    return _element(None, tag, version=VERSION, id=model.id, **attributes)


def _named(root: etree._Element, model: Character | Culture) -> None:
    _element(root, "name", model.name)
    if model.description:
        _element(root, "description", model.description)


def _rules(root: etree._Element, model: Character | Culture) -> None:
    for rule in model.display_rules:
        _element(root, "display-rule", **_fields(rule, "emotion", "audience", "kind", "value", "show"))


def _character(ch: Character) -> etree._Element:
    root = _root(ch, "character", culture=ch.culture)
    _named(root, ch)
    if "personality" in ch.model_fields_set:  # unwritten traits stay unknown, not average
        _element(root, "personality", **ch.personality.model_dump())
    if ch.mood is not None:
        _element(root, "mood", **ch.mood.model_dump())
    if ch.mood_dynamics is not None:
        _element(root, "mood-dynamics", **ch.mood_dynamics.model_dump())
    for r in ch.ranges:
        _element(root, "range", **_fields(r, "emotion", "min", "max", "never"))
    for v in ch.volatility:
        _element(root, "volatility", **_fields(v, "max_step", "emotion"))
    _rules(root, ch)
    for r in ch.relations:
        _element(root, "relation", **_fields(r, "to", "liking", "dominance", "trust"))
    for b in ch.behaviours:
        _element(root, "behaviour", b.text, **_fields(b, "id", "pleasure", "arousal", "dominance"))
    return root


def _culture(culture: Culture) -> etree._Element:
    root = _root(culture, "culture")
    _named(root, culture)
    hofstede = _element(root, "hofstede")
    for dimension, score in culture.hofstede.items():
        hofstede.set(dimension, _number(score))
    _rules(root, culture)
    return root


def _situation(situation: Situation) -> etree._Element:
    root = _root(situation, "situation")
    if situation.title:
        _element(root, "title", situation.title)
    _element(root, "setting", situation.setting, publicness=situation.publicness)
    cast = _element(root, "cast")
    for ref in situation.cast:
        _element(cast, "member", ref=ref)
    _element(root, "beats", count=situation.beats)
    events = _element(root, "events")
    for e in situation.events:
        event = _element(events, "event", **_fields(e, "id", "beat", "agent", "target", "status"))
        if e.text:
            _element(event, "text", e.text)
        for a in e.appraisals:
            _element(event, "appraisal", **a.model_dump())
    pins = _element(root, "pins")
    for p in situation.pins:
        _element(pins, "pin", **p.model_dump())
    return root


def _story(story: Story) -> etree._Element:
    root = _root(story, "story")
    if story.title:
        _element(root, "title", story.title)
    for scene in story.scenes:
        _element(root, "scene", href=scene.href, carry=scene.carry)
    return root


_WRITERS = {Character: _character, Culture: _culture, Situation: _situation, Story: _story}


def to_xml(model: Character | Culture | Situation | Story) -> bytes:
    """The file a writer would have written for this model (UTF-8, with declaration)."""
    root = _WRITERS[type(model)](model)
    body = etree.tostring(root, pretty_print=True, xml_declaration=False, encoding="UTF-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
