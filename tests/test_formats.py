"""The four formats: schemas agree with the models and docs, shipped examples are valid, files round-trip."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import LIBRARY, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from storydiff import loader, writer, xmlio
from storydiff.models import (
    Appraisal,
    Behaviour,
    Character,
    DisplayRule,
    EmotionRange,
    Mood,
    MoodDynamics,
    Personality,
    Relation,
    Situation,
    Story,
    StoryScene,
    Volatility,
)
from storydiff.validate import validate_paths
from storydiff.vocab import AUDIENCES, DISPLAY_KINDS, HOFSTEDE, OCC_EMOTIONS

XS = "{http://www.w3.org/2001/XMLSchema}"
SCHEMAS = REPO / "schemas"
EXAMPLES = sorted(LIBRARY.rglob("*.xml"))


def _xsd(name: str) -> etree._ElementTree:
    return etree.parse(str(SCHEMAS / name))


def _enumeration(type_name: str) -> tuple[str, ...]:
    simple = _xsd("common.xsd").find(f"{XS}simpleType[@name='{type_name}']")
    return tuple(e.get("value") for e in simple.iter(f"{XS}enumeration"))


def test_schema_vocabularies_match_vocab():
    assert _enumeration("emotion") == OCC_EMOTIONS
    assert _enumeration("audience") == AUDIENCES
    assert _enumeration("displayKind") == DISPLAY_KINDS
    hofstede = _xsd("culture.xsd").find(f".//{XS}element[@name='hofstede']")
    assert tuple(a.get("name") for a in hofstede.iter(f"{XS}attribute")) == HOFSTEDE


def _declared(kind: str, what: str) -> set[str]:
    return {e.get("name") for name in (f"{kind}.xsd", "common.xsd") for e in _xsd(name).iter(f"{XS}{what}")
            if e.get("name")}


@pytest.mark.parametrize("kind", xmlio.KINDS)
def test_every_element_and_attribute_is_documented(kind):
    docs = (REPO / "docs" / "formats.md").read_text(encoding="utf-8")
    assert not {e for e in _declared(kind, "element") if f"<{e}>" not in docs}
    assert not {a for a in _declared(kind, "attribute") if f"`{a}`" not in docs}


# Where an XSD attribute default lands in the models.
DEFAULTS = [
    ("character.xsd", "personality", Personality), ("character.xsd", "mood", Mood),
    ("character.xsd", "mood-dynamics", MoodDynamics), ("character.xsd", "relation", Relation),
    ("character.xsd", "behaviour", Behaviour), ("situation.xsd", "appraisal", Appraisal),
]


@pytest.mark.parametrize("xsd, element, model", DEFAULTS)
def test_schema_defaults_are_model_defaults(xsd, element, model):
    declared = _xsd(xsd).find(f".//{XS}element[@name='{element}']")
    defaults = {a.get("name"): a.get("default") for a in declared.iter(f"{XS}attribute") if a.get("default")}
    assert defaults
    for name, value in defaults.items():
        assert model.model_fields[name.replace("-", "_")].default == float(value), name


def test_range_and_story_defaults():
    range_ = _xsd("character.xsd").find(f".//{XS}element[@name='range']")
    defaults = {a.get("name"): a.get("default") for a in range_.iter(f"{XS}attribute") if a.get("default")}
    assert defaults == {"min": "0", "max": "1", "never": "false"}
    assert EmotionRange(emotion="joy").model_dump() == {"emotion": "joy", "min": 0, "max": 1, "never": False}
    carry = _xsd("story.xsd").find(f".//{XS}attribute[@name='carry']").get("default")
    assert carry.split() == StoryScene(href="x").carry


def test_library_has_the_promised_examples():
    """DESIGN §3: at least 8 characters, 3 cultures, 5 situations, 1 story."""
    kinds = [xmlio.parse(p).kind for p in EXAMPLES]
    assert kinds.count("character") >= 8 and kinds.count("culture") >= 3
    assert kinds.count("situation") >= 5 and kinds.count("story") >= 1


def test_every_shipped_example_is_valid():
    assert [str(p) for p in validate_paths([LIBRARY])] == []


def test_library_loads_with_sources():
    cast = loader.load_characters(LIBRARY)
    mara = cast["mara"]
    text = (LIBRARY / "mara.character.xml").read_text(encoding="utf-8")
    assert mara.source.line == text[:text.index("<character")].count("\n") + 1
    assert mara.culture in cast.cultures
    assert all(r.source.path.endswith("mara.character.xml") for r in mara.ranges)


@pytest.mark.parametrize("story", sorted(LIBRARY.rglob("*.story.xml")), ids=lambda p: p.name)
def test_story_loads_its_situations_in_order(story):
    cast = loader.load_characters(loader.find_characters_dir(story))
    loaded = loader.load_story(story, cast)
    assert [Path(s.path).resolve() for s in loaded.situations] == [
        loader.scene_path(story, scene.href).resolve() for scene in loaded.scenes]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_shipped_files_round_trip(path, tmp_path):
    model = loader.read_model(path)
    copy = tmp_path / path.name
    copy.write_bytes(writer.to_xml(model))
    assert loader.read_model(copy).model_dump() == model.model_dump()


def test_written_xml_is_readable_by_people():
    situation = loader.read_model(LIBRARY / "situations" / "storm.situation.xml")
    text = writer.to_xml(situation).decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<situation xmlns=')
    assert re.search(r'<beats count="\d+"/>', text)
    assert "e-" not in writer.to_xml(Character(id="x", name="X", mood=Mood(pleasure=1e-7))).decode()


# ---------------------------------------------------------------- Hypothesis: model → XML → model

ids = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,10}", fullmatch=True)
unit = st.floats(0, 1, allow_nan=False)
signed = st.floats(-1, 1, allow_nan=False)
emotions = st.sampled_from(OCC_EMOTIONS)
text = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=40).map(
    lambda t: re.sub(r"[ \t\r\n]+", " ", t).strip(" ")).filter(bool)

characters = st.builds(
    Character,
    id=ids,
    name=text,
    description=st.one_of(st.just(""), text),
    culture=st.one_of(st.none(), ids),
    personality=st.builds(Personality, openness=unit, conscientiousness=unit, extraversion=unit,
                          agreeableness=unit, neuroticism=unit),
    mood=st.one_of(st.none(), st.builds(Mood, pleasure=signed, arousal=signed, dominance=signed)),
    mood_dynamics=st.one_of(st.none(), st.builds(MoodDynamics, pull=unit, band=unit)),
    ranges=st.lists(st.builds(EmotionRange, emotion=emotions, min=unit, max=unit, never=st.booleans()), max_size=4),
    volatility=st.lists(st.builds(Volatility, max_step=unit, emotion=st.one_of(st.none(), emotions)), max_size=3),
    display_rules=st.lists(st.builds(DisplayRule, emotion=emotions, audience=st.sampled_from(AUDIENCES),
                                     kind=st.sampled_from(DISPLAY_KINDS), value=st.one_of(st.none(), unit),
                                     show=st.one_of(st.none(), emotions)), max_size=4),
    relations=st.lists(st.builds(Relation, to=ids, liking=signed, dominance=signed, trust=signed), max_size=3),
    behaviours=st.lists(st.builds(Behaviour, id=ids, text=text, pleasure=signed, arousal=signed,
                                  dominance=signed), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(character=characters)
def test_generated_characters_round_trip(character, tmp_path):
    path = tmp_path / "generated.character.xml"
    path.write_bytes(writer.to_xml(character))
    assert loader.read_model(path).model_dump() == character.model_dump()


def test_generated_situation_and_story_round_trip(tmp_path):
    situation = Situation(id="s", title="A & B <quoted>", setting="", cast=["a", "b"], beats=3, pins=[],
                          events=[])
    story = Story(id="t", scenes=[StoryScene(href="s.situation.xml", carry=[])])
    for model, name in ((situation, "s.situation.xml"), (story, "t.story.xml")):
        (tmp_path / name).write_bytes(writer.to_xml(model))
        assert loader.read_model(tmp_path / name).model_dump() == model.model_dump()
