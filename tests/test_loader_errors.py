"""Broken files are rejected with the right code at the right line and column, never with a traceback."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import LIBRARY, locate

from storydiff import loader, xmlio
from storydiff.errors import StorydiffError, ValidationError

NS = 'xmlns="https://storydiff.org/ns/1.0" version="1.0"'
ANA = f"""<?xml version="1.0" encoding="UTF-8"?>
<character {NS} id="ana" culture="plain">
  <name>Ana</name>
  <range emotion="shame" never="true"/>
  <range emotion="pride" max="0.6"/>
  <relation to="ben" liking="0.5"/>
  <behaviour id="shrug" pleasure="0.1">shrugs</behaviour>
</character>
"""
BEN = f"""<?xml version="1.0" encoding="UTF-8"?>
<character {NS} id="ben">
  <name>Ben</name>
</character>
"""
PLAIN = f"""<?xml version="1.0" encoding="UTF-8"?>
<culture {NS} id="plain">
  <name>Plain folk</name>
  <display-rule emotion="pride" audience="public" kind="max" value="0.4"/>
</culture>
"""
SCENE = f"""<?xml version="1.0" encoding="UTF-8"?>
<situation {NS} id="scene">
  <cast>
    <member ref="ana"/>
    <member ref="ben"/>
  </cast>
  <beats count="4"/>
  <events>
    <event id="news" beat="2" agent="ben" target="ana">
      <appraisal character="ana" desirability="-0.5"/>
    </event>
  </events>
  <pins>
    <pin var="ana.felt.pride@3" max="0.5"/>
  </pins>
</situation>
"""
STORY = f"""<?xml version="1.0" encoding="UTF-8"?>
<story {NS} id="tale">
  <scene href="../situations/scene.situation.xml"/>
</story>
"""


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """A small valid library: two characters, a culture, a situation and a story."""
    files = {"ana.character.xml": ANA, "ben.character.xml": BEN, "cultures/plain.culture.xml": PLAIN,
             "situations/scene.situation.xml": SCENE, "stories/tale.story.xml": STORY}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def edit(path: Path, old: str, new: str) -> str:
    text = path.read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return text


def problems_of(load, *args) -> list:
    with pytest.raises(ValidationError) as caught:
        load(*args)
    return caught.value.problems


def one(problems: list, code: str):
    found = [p for p in problems if p.code == code]
    assert len(found) == 1, problems
    return found[0]


def at(problem) -> tuple[int, int]:
    return problem.line, problem.column


def test_small_library_is_valid(lib):
    cast = loader.load_characters(lib)
    assert cast.ids() == ["ana", "ben"] and list(cast.cultures) == ["plain"]
    story = loader.load_story(lib / "stories" / "tale.story.xml", cast)
    assert [s.id for s in story.situations] == ["scene"]
    assert story.situations[0].path == str(lib / "situations" / "scene.situation.xml")


# ---------------------------------------------------------------- malformed XML

def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "broken.character.xml"
    path.write_bytes(data)
    return path


def test_unclosed_tag(tmp_path):
    path = _write(tmp_path, f"<character {NS} id=\"a\">\n  <name>Ana\n</character>\n".encode())
    problem = one(problems_of(xmlio.parse, path), "unclosed-tag")
    assert at(problem) == (3, len("</character>") + 1)
    assert "<name> opened on line 2" in problem.message


@pytest.mark.parametrize("data", [b"", b"  \n\t\n"], ids=["empty", "blank"])
def test_empty_file(tmp_path, data):
    assert at(one(problems_of(xmlio.parse, _write(tmp_path, data)), "empty-file")) == (1, 1)


def test_bad_encoding(tmp_path):
    data = f'<?xml version="1.0" encoding="UTF-8"?>\n<character {NS} id="a">\n  <name>Caf\xe9</name>\n</character>'
    problem = one(problems_of(xmlio.parse, _write(tmp_path, data.encode("latin-1"))), "bad-encoding")
    assert at(problem) == (3, len("  <name>Caf") + 1)


def test_declared_latin1_is_fine(tmp_path):
    data = f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<character {NS} id="a"><name>Café</name></character>'
    assert loader.read_model(_write(tmp_path, data.encode("latin-1"))).name == "Café"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<character {ns} id="a"><name>&lol5;</name></character>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE character [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<character {ns} id="a"><name>&xxe;</name></character>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "external-entity"])
def test_doctype_is_refused(tmp_path, text):
    path = _write(tmp_path, text.format(ns=NS).encode())
    problem = one(problems_of(loader.read_model, path), "doctype")
    assert at(problem) == (2, 1)
    assert "root:" not in problem.message


def test_eleven_megabytes_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.character.xml"
    with path.open("wb") as f:
        f.write(f"<character {NS} id=\"a\"><name>".encode())
        f.write(b"x" * (11 * 2**20))
        f.write(b"</name></character>")
    start = time.perf_counter()
    assert at(one(problems_of(loader.read_model, path), "too-large")) == (1, 1)
    assert time.perf_counter() - start < 1.0


def test_unknown_root_and_namespace(tmp_path):
    assert one(problems_of(xmlio.parse, _write(tmp_path, b"<novel/>")), "unknown-root")
    assert one(problems_of(xmlio.parse, _write(tmp_path, b'<character version="1.0" id="a"/>')), "wrong-namespace")


# ---------------------------------------------------------------- schema errors

def test_unknown_emotion_is_a_schema_error_at_the_attribute(lib):
    text = edit(lib / "ana.character.xml", 'emotion="pride"', 'emotion="smugness"')
    problem = one(problems_of(loader.load_characters, lib), "unknown-emotion")
    assert at(problem) == locate(text, 'emotion="smugness"')
    assert "'smugness' is not an emotion" in problem.message and "pride" in problem.message


def test_schema_reports_every_error_with_position(lib):
    text = edit(lib / "ana.character.xml", '<range emotion="pride" max="0.6"/>',
                '<range emotion="pride" max="1.6"/>\n  <scar/>\n  <volatility/>\n  <relation to="b.c"/>')
    problems = problems_of(loader.load_characters, lib)
    assert at(one(problems, "out-of-range")) == locate(text, 'max="1.6"')
    assert at(one(problems, "unexpected-element")) == locate(text, "<scar/>")
    assert at(one(problems, "missing-attribute")) == locate(text, "<volatility/>")
    assert at(one(problems, "bad-id")) == locate(text, 'to="b.c"')
    assert "{" not in " ".join(p.message for p in problems)  # no {namespace} noise


def test_bad_version_and_misplaced_element(lib):
    text = edit(lib / "ben.character.xml", 'version="1.0" id="ben">\n  <name>Ben</name>',
                'version="2.0" id="ben">\n  <personality/>\n  <name>Ben</name>')
    problems = problems_of(loader.load_characters, lib)
    assert at(one(problems, "bad-version")) == locate(text, 'version="2.0"')
    assert at(one(problems, "unexpected-element")) == locate(text, "<personality/>")


def test_unknown_attribute_lists_the_known_ones(lib):
    text = edit(lib / "ana.character.xml", 'max="0.6"', 'maximum="0.6"')
    problem = one(problems_of(loader.load_characters, lib), "unknown-attribute")
    assert at(problem) == locate(text, "maximum=")
    assert "it takes: emotion, min, max, never" in problem.message


def test_attribute_position_in_a_multiline_tag(lib):
    text = edit(lib / "ana.character.xml", '<range emotion="pride" max="0.6"/>',
                '<range emotion="pride"\n         max="x"/>')
    assert at(one(problems_of(loader.load_characters, lib), "bad-value")) == locate(text, 'max="x"')


# ---------------------------------------------------------------- library checks

def test_duplicate_character_across_files(lib):
    text = ANA.replace('<name>Ana</name>', '<name>Ana again</name>')
    (lib / "zz.character.xml").write_text(text, encoding="utf-8")
    problem = one(problems_of(loader.load_characters, lib), "duplicate-id")
    assert problem.path.endswith("zz.character.xml") and at(problem) == locate(text, 'id="ana"')
    assert "ana.character.xml:2" in problem.message


def test_unknown_culture_and_relation(lib):
    edit(lib / "ana.character.xml", 'culture="plain"', 'culture="nowhere"')
    text = edit(lib / "ana.character.xml", 'to="ben"', 'to="carl"')
    problems = problems_of(loader.load_characters, lib)
    assert at(one(problems, "unknown-culture")) == locate(text, 'culture="nowhere"')
    assert at(one(problems, "unknown-character")) == locate(text, 'to="carl"')


def test_unreadable_culture_is_not_reported_again_as_unknown(lib):
    edit(lib / "cultures" / "plain.culture.xml", "</culture>", "")
    problems = problems_of(loader.load_characters, lib)
    assert [p.code for p in problems] == ["unclosed-tag"]


def test_single_file_finds_cultures_beside_it(lib):
    cast = loader.load_characters(lib / "ana.character.xml")
    assert cast.ids() == ["ana"] and cast.culture_of("ana").id == "plain"


def test_every_problem_in_a_file_is_reported(lib):
    text = edit(lib / "ana.character.xml", '<behaviour id="shrug" pleasure="0.1">shrugs</behaviour>', (
        '<range emotion="joy" min="0.9" max="0.2"/>\n'
        '  <display-rule emotion="joy" audience="public" kind="max"/>\n'
        '  <display-rule emotion="fear" audience="public" kind="mask" value="0.5"/>\n'
        '  <relation to="ana"/>\n'
        '  <behaviour id="shrug">shrugs</behaviour>\n'
        '  <behaviour id="shrug">shrugs again</behaviour>'))
    problems = problems_of(loader.load_characters, lib)
    assert at(one(problems, "min-above-max")) == locate(text, 'min="0.9"')
    assert at(one(problems, "missing-value")) == locate(text, '<display-rule emotion="joy"')
    assert at(one(problems, "missing-show")) == locate(text, '<display-rule emotion="fear"')
    assert at(one(problems, "self-relation")) == locate(text, 'to="ana"')
    assert at(one(problems, "duplicate-id")) == locate(text, 'id="shrug"', 2)


def test_never_felt_emotion_cannot_be_simulated_through_de_intensify(lib):
    text = edit(lib / "ana.character.xml", "<relation", (
        '<display-rule emotion="shame" audience="public" kind="de-intensify" value="0.5"/>\n'
        '  <display-rule emotion="shame" audience="public" kind="simulate" value="0.3"/>\n  <relation'))
    problem = one(problems_of(loader.load_characters, lib), "rule-conflict")
    assert at(problem) == locate(text, '<display-rule emotion="shame" audience="public" kind="simulate"')


def test_range_contradicted_by_own_culture(lib):
    edit(lib / "cultures" / "plain.culture.xml", "</culture>",
         '  <display-rule emotion="pride" audience="private" kind="intensify"/>\n'
         '  <display-rule emotion="pride" audience="private" kind="max" value="0.3"/>\n</culture>')
    text = edit(lib / "ana.character.xml", '<range emotion="pride" max="0.6"/>',
                '<range emotion="pride" min="0.5" max="0.6"/>')
    problem = one(problems_of(loader.load_characters, lib), "rule-conflict")
    assert problem.path.endswith("ana.character.xml") and at(problem) == locate(text, "<range emotion=\"pride\"")
    assert "plain.culture.xml" in problem.message


def test_conflict_within_a_culture_is_the_cultures(lib):
    text = edit(lib / "cultures" / "plain.culture.xml", "</culture>",
                '  <display-rule emotion="pride" audience="public" kind="simulate" value="0.6"/>\n</culture>')
    problem = one(problems_of(loader.load_characters, lib), "rule-conflict")
    assert problem.path.endswith("plain.culture.xml")
    assert at(problem) == locate(text, '<display-rule emotion="pride" audience="public" kind="simulate"')


def test_own_rule_replaces_the_cultures(lib):
    edit(lib / "ana.character.xml", "<relation",
         '<display-rule emotion="pride" audience="public" kind="simulate" value="0.6"/>\n  <relation')
    assert loader.load_characters(lib)["ana"].display_rules[0].kind == "simulate"


# ---------------------------------------------------------------- situations and stories

def _scene_problems(lib: Path) -> list:
    cast = loader.load_characters(lib)
    return problems_of(loader.load_situation, lib / "situations" / "scene.situation.xml", cast)


def test_situation_references(lib):
    path = lib / "situations" / "scene.situation.xml"
    edit(path, '<member ref="ben"/>', '<member ref="ben"/>\n    <member ref="zed"/>')
    edit(path, 'beat="2"', 'beat="9"')
    text = edit(path, '<appraisal character="ana"', '<appraisal character="ana"/>\n      <appraisal character="ana"')
    problems = _scene_problems(lib)
    assert at(one(problems, "beat-out-of-range")) == locate(text, 'beat="9"')
    assert at(one(problems, "duplicate")) == locate(text, 'character="ana"', 2)
    assert at(one(problems, "unknown-character")) == locate(text, 'ref="zed"')


def test_event_agent_outside_the_cast(lib):
    path = lib / "situations" / "scene.situation.xml"
    text = edit(path, '<member ref="ben"/>', "")
    problems = _scene_problems(lib)
    agent = [p for p in problems if p.code == "unknown-character" and at(p) == locate(text, 'agent="ben"')]
    assert agent and "add <member ref=\"ben\"/>" in agent[0].message


def test_duplicate_event_ids(lib):
    path = lib / "situations" / "scene.situation.xml"
    text = edit(path, "  </events>", '    <event id="news" beat="3"/>\n  </events>')
    assert at(one(_scene_problems(lib), "duplicate-id")) == locate(text, 'id="news"', 2)


@pytest.mark.parametrize("pin, code, attribute", [
    ('<pin var="ana.felt.shame@2" min="0.3"/>', "pin-outside-range", 'min="0.3"'),
    ('<pin var="ana.felt.pride@3" equal="0.9"/>', "pin-outside-range", 'equal="0.9"'),
    ('<pin var="ana.felt.rage@2" min="0.3"/>', "bad-variable", 'var='),
    ('<pin var="ana.felt.joy@5" min="0.3"/>', "beat-out-of-range", 'var='),
    ('<pin var="zed.felt.joy@2" min="0.3"/>', "unknown-character", 'var='),
    ('<pin var="ana.stance.ana.trust@2" min="0.3"/>', "bad-variable", 'var='),
    ('<pin var="ana.felt.joy@2"/>', "empty-pin", '<pin var="ana.felt.joy@2"'),
    ('<pin var="ana.felt.joy@2" min="0.5" max="0.2"/>', "min-above-max", 'min="0.5"'),
    ('<pin var="ana.shown.joy@2" max="-0.5"/>', "out-of-range", 'max="-0.5"'),
    ('<pin var="ana.felt.pride@3" min="0.55"/>', "conflicting-pin", '<pin var="ana.felt.pride@3" min'),
])
def test_pins(lib, pin, code, attribute):
    text = edit(lib / "situations" / "scene.situation.xml", "  </pins>", f"    {pin}\n  </pins>")
    assert at(one(_scene_problems(lib), code)) == locate(text, attribute, text.count(attribute))


def test_story_with_missing_scene(lib):
    path = lib / "stories" / "tale.story.xml"
    text = edit(path, "</story>", '  <scene href="gone.situation.xml" carry="mood"/>\n</story>')
    cast = loader.load_characters(lib)
    assert at(one(problems_of(loader.load_story, path, cast), "missing-file")) == locate(text, 'href="gone')


def test_story_reports_its_situations_problems(lib):
    edit(lib / "situations" / "scene.situation.xml", 'beat="2"', 'beat="9"')
    cast = loader.load_characters(lib)
    problem = one(problems_of(loader.load_story, lib / "stories" / "tale.story.xml", cast), "beat-out-of-range")
    assert problem.path.endswith("scene.situation.xml")


def test_wrong_kind_and_missing_files(lib):
    cast = loader.load_characters(lib)
    assert one(problems_of(loader.load_situation, lib / "ana.character.xml", cast), "wrong-kind")
    assert one(problems_of(loader.load_situation, lib / "nothing.xml", cast), "missing-file")
    assert one(problems_of(loader.load_characters, lib / "nothing"), "missing-file")


# ---------------------------------------------------------------- where characters are found

def test_find_characters_dir(lib, tmp_path_factory):
    situation = lib / "situations" / "scene.situation.xml"
    assert loader.find_characters_dir(situation).resolve() == lib.resolve()
    assert loader.find_characters_dir(situation, explicit=lib / "situations") == lib / "situations"
    with pytest.raises(StorydiffError):
        loader.find_characters_dir(situation, explicit=lib / "nowhere")
    lonely = tmp_path_factory.mktemp("elsewhere") / "deep" / "x.situation.xml"
    lonely.parent.mkdir(parents=True)
    assert loader.find_characters_dir(lonely) == loader.bundled_library()
    assert (loader.bundled_library() / "mara.character.xml").is_file()
    assert loader.bundled_library().resolve() == LIBRARY.resolve()
