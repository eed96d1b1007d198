"""`storydiff validate` and friends: output formats, exit codes 0/1/2, the feasibility hook, light imports."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import LIBRARY, REPO, locate, situation_xml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from storydiff import __version__
from storydiff.checkpoint import default_checkpoint
from storydiff.cli import COMMANDS, main
from storydiff.engine import Engine
from storydiff.errors import Problem, StorydiffError
from storydiff.validate import validate_paths

LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<column>\d+): error: (?P<message>.+)$")


@pytest.fixture
def broken(library_copy: Path) -> Path:
    """The example library with one unknown emotion in mara's file."""
    path = library_copy / "mara.character.xml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('<range emotion="anger"', '<range emotion="rage"', 1), encoding="utf-8")
    assert 'emotion="rage"' in path.read_text(encoding="utf-8")
    return library_copy


def test_valid_library_exits_0_silently(capsys):
    assert main(["validate", str(LIBRARY)]) == 0
    assert capsys.readouterr().out == ""


def test_invalid_input_exits_1_with_compiler_lines(broken, capsys):
    assert main(["validate", str(broken)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(LINE.match(line) for line in lines)
    assert any("'rage' is not an emotion" in line for line in lines)


def test_json_output_schema(broken, capsys):
    assert main(["validate", str(broken), "--format", "json"]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert isinstance(problems, list) and problems
    for p in problems:
        assert set(p) == {"path", "line", "column", "code", "message"}
        assert isinstance(p["path"], str) and isinstance(p["code"], str) and isinstance(p["message"], str)
        assert isinstance(p["line"], int) and isinstance(p["column"], int) and p["line"] >= 1 and p["column"] >= 1
    assert "unknown-emotion" in {p["code"] for p in problems}


def test_json_output_when_valid(capsys):
    assert main(["validate", str(LIBRARY / "mara.character.xml"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("argv", [
    ["validate", "no/such/file.xml"],
    ["validate"],
    ["validate", str(LIBRARY), "--format", "yaml"],
    ["validate", str(LIBRARY), "--characters", "no/such/dir"],
    ["frobnicate"],
    [],
    ["demo", "--seed", "99999999999999999999999"],
    ["demo", "--seed", "-1"],
    ["sample", str(LIBRARY / "situations" / "storm.situation.xml"), "--guidance", "nan"],
    ["train", "corpus", "--out", "t.safetensors", "--lr", "-1"],
    ["learn", "draft.fountain", "--out", "t.safetensors", "--lr", "inf"],
    ["train", "corpus", "--out", "t.safetensors", "--width", "97"],
], ids=["missing-path", "no-path", "bad-format", "missing-characters", "unknown-command", "no-command",
        "seed-too-large", "seed-negative", "guidance-nan", "lr-negative", "lr-inf", "width-not-multiple-of-heads"])
def test_usage_errors_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and captured.err.startswith("storydiff: error:")


@pytest.mark.parametrize("device", ["nonsense", "mps", ""])
def test_a_device_storydiff_cannot_run_on_is_one_line(device, capsys):
    assert main(["demo", "--device", device]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use cpu, cuda or cuda:N" in err


def test_unreadable_file_exits_2(tmp_path, monkeypatch, capsys):
    path = tmp_path / "secret.character.xml"
    shutil.copy(LIBRARY / "mara.character.xml", path)
    real_open = Path.open

    def refuse(self, *args, **kwargs):  # chmod 000 does not stop root, so refuse the read here
        if self.name == path.name:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("storydiff: error:") and "cannot read (Permission denied)" in err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"storydiff {__version__}"


def test_one_character_file_is_checked_within_its_library(library_copy):
    mara = library_copy / "mara.character.xml"
    mara.write_text(mara.read_text(encoding="utf-8").replace('<relation to="ilan"', '<relation to="ilann"'),
                    encoding="utf-8")
    problems = validate_paths([mara])
    assert [(Path(p.path).name, p.message.split(",")[0]) for p in problems] == [
        ("mara.character.xml", "relation to 'ilann'")]
    assert validate_paths([library_copy / "ilan.character.xml"]) == []  # mara's problem is not ilan's


def test_kind_comes_from_the_root_element(tmp_path, capsys):
    odd = tmp_path / "notes.xml"
    shutil.copy(LIBRARY / "cultures" / "harbor-folk.culture.xml", odd)
    assert main(["validate", str(odd)]) == 0
    (tmp_path / "other.xml").write_text("<novel/>", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    assert "unknown-root" in {p.code for p in validate_paths([tmp_path])}


def test_situation_uses_characters_option(library_copy, tmp_path):
    situation = tmp_path / "lone" / "storm.situation.xml"
    situation.parent.mkdir()
    shutil.copy(LIBRARY / "situations" / "storm.situation.xml", situation)
    assert validate_paths([situation], characters=library_copy) == []
    empty = tmp_path / "empty-library"
    empty.mkdir()
    codes = {p.code for p in validate_paths([situation], characters=empty)}
    assert codes == {"unknown-character"}


def test_feasibility_hook_is_used_when_present(monkeypatch):
    seen = []

    def explain_infeasible(cast, situation):
        seen.append(situation.id)
        return [Problem(situation.path, 1, 1, "infeasible", "no scene satisfies every rule")]

    module = types.ModuleType("storydiff.feasibility")
    module.explain_infeasible = explain_infeasible
    monkeypatch.setitem(sys.modules, "storydiff.feasibility", module)
    storm = LIBRARY / "situations" / "storm.situation.xml"
    assert [p.code for p in validate_paths([storm])] == ["infeasible"] and seen == ["storm"]


NOISY = situation_xml("noisy", 6, [("mara.felt.joy@3", 'equal="0"'), ("mara.felt.joy@5", 'min="0.9"')])


def test_one_conflict_is_one_error_however_many_beats_and_files_it_spans(tmp_path, capsys):
    # Joy from 0 to 0.9 in two beats of at most 0.35: two pins here, two beats of one rule in mara's file.
    path = tmp_path / "noisy.situation.xml"
    path.write_text(NOISY, encoding="utf-8")
    assert main(["validate", str(path)]) == 1  # the bundled library: no characters beside it
    (line,) = capsys.readouterr().out.splitlines()
    row, column = locate(NOISY, '<pin var="mara.felt.joy@3"')
    assert line.startswith(f"{path}:{row}:{column}: error: pin mara.felt.joy = 0 at beat 3 conflicts with ")
    assert "between beats 3 and 4 (mara.character.xml:" in line and "between beats 4 and 5 (mara.character.xml:" in line
    assert "pin mara.felt.joy ≥ 0.9 at beat 5 (noisy.situation.xml:10)" in line
    assert main(["validate", str(path), "--format", "json"]) == 1
    assert [p["code"] for p in json.loads(capsys.readouterr().out)] == ["infeasible"]


def test_a_checkpoint_without_its_config_is_one_line_naming_it(tmp_path, capsys):
    weights = tmp_path / "mine.safetensors"
    shutil.copy(default_checkpoint(), weights)
    with pytest.raises(StorydiffError) as caught:
        Engine.load(weights, device="cpu")
    message = str(caught.value)
    assert message == (f"{tmp_path / 'mine.json'}: config not found beside mine.safetensors; put the mine.json "
                       "that `storydiff train` wrote with these weights next to them")
    storm = LIBRARY / "situations" / "storm.situation.xml"
    assert main(["sample", str(storm), "--checkpoint", str(weights), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"storydiff: error: {message}\n")


def test_feasibility_hook_is_skipped_when_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "storydiff.feasibility", None)
    assert validate_paths([LIBRARY / "situations"]) == []


def test_demo_prints_a_beat_sheet_of_the_bundled_situation(capsys):
    assert main(["demo", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "STORM AT THE BAR" in out and "MARA" in out and "ILAN" in out
    assert "seed 0" in out and "Beat 8" in out


def test_commands_are_one_table():
    assert {"validate", "demo", "sample", "corpus", "train"} <= set(COMMANDS)
    assert all(callable(c.run) and c.help for c in COMMANDS.values())


def _script() -> str:
    found = shutil.which("storydiff", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the storydiff console script is not installed in this environment")
    return found


def test_console_script(broken):
    ok = subprocess.run([_script(), "validate", str(LIBRARY)], capture_output=True, check=False, text=True, timeout=120)
    assert (ok.returncode, ok.stdout) == (0, "")
    bad = subprocess.run([_script(), "validate", str(broken), "--format", "json"], capture_output=True, check=False,
                         text=True, timeout=120)
    assert bad.returncode == 1 and json.loads(bad.stdout)
    usage = subprocess.run([_script(), "validate", "missing.xml"], capture_output=True, check=False, text=True, timeout=60)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_importing_and_validating_characters_stays_light():
    code = ("import sys, storydiff, storydiff.cli; from storydiff.cli import main; "
            f"assert main(['validate', {str(LIBRARY / 'mara.character.xml')!r}]) == 0; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert storydiff.load_characters and storydiff.ValidationError")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


# -- damaged files -------------------------------------------------------------------------------
_DAMAGE_VALUES = ["", "nan", "inf", "-1e309", "1e400", "abc", "0.5.5", "½", "-5", "2", "0", "65", "nobody"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_get_located_one_line_errors(library_copy, data, capsys):
    """Any single damage to a shipped file — a value, a name, a tag, a cut — is reported, never raised."""
    files = sorted(library_copy.rglob("*.xml"))
    path = data.draw(st.sampled_from(files))
    original = path.read_bytes()
    try:
        root = etree.fromstring(original)
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        element = data.draw(st.sampled_from(elements))
        kind = data.draw(st.sampled_from(["value", "name", "tag", "drop", "cut"]))
        if kind in ("value", "name") and element.attrib:
            name = data.draw(st.sampled_from(sorted(element.attrib)))
            value = element.attrib.pop(name)
            if kind == "value":
                element.set(name, data.draw(st.sampled_from(_DAMAGE_VALUES)))
            else:
                element.set(name + "x", value)
        elif kind == "tag":
            element.tag += "x"
        elif kind == "drop" and element.getparent() is not None:
            element.getparent().remove(element)
        damaged = etree.tostring(root, xml_declaration=True, encoding="utf-8")
        if kind == "cut":
            damaged = original[: data.draw(st.integers(0, len(original) - 1))]
        path.write_bytes(damaged)
        code = main(["validate", str(library_copy)])
        out = capsys.readouterr()
        assert code in (0, 1) and out.err == ""
        lines = out.out.splitlines()
        assert all(LINE.match(line) for line in lines), lines
        assert (code == 1) == bool(lines)
    finally:
        path.write_bytes(original)


def test_a_file_cut_inside_a_comment_is_one_line(tmp_path, capsys):
    # libxml2 follows "Comment not terminated" with a line echoing the source
    path = tmp_path / "cut.character.xml"
    path.write_text('<?xml version="1.0"?>\n<character xmlns="https://storydiff.org/ns/1.0" id="a">\n<!-- half a')
    assert main(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]) and "Comment not terminated" in lines[0]


def test_a_problem_prints_on_one_line_whatever_it_quotes():
    problem = Problem("a.xml", 3, 4, "bad", "'an\ngry' is not an emotion")
    assert str(problem) == "a.xml:3:4: error: 'an gry' is not an emotion"
