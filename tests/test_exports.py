"""Exports: JSON round trip, EmotionML against the W3C schema, Fountain through screenplain, Ink through inkjs."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from lxml import etree
from screenplain.parsers import fountain as screenplain
from screenplain.types import Action, Dialog, Section, Slug
from test_render import CHECKPOINT, LIBRARY, library, make_scene

from storydiff import fileio
from storydiff.cli import main
from storydiff.errors import StorydiffError
from storydiff.export import (
    FORMATS,
    export,
    from_emotionml,
    from_json,
    to_emotionml,
    to_fountain,
    to_ink,
    to_json,
    to_text,
    write_atomic,
)
from storydiff.export.emotionml import CATEGORY_SET, DIMENSION_SET, NS, SD
from storydiff.export.fountain import scene_heading
from storydiff.models import Situation
from storydiff.render import render_beat_sheet
from storydiff.scene import Scene
from storydiff.vocab import OCC_EMOTIONS

HERE = Path(__file__).resolve().parent
EMOTIONML = HERE / "data" / "emotionml"
INK = HERE / "ink"
EM = f"{{{NS}}}"
# Writer text that is syntax in Ink, Fountain or XML; every export must carry it through literally.
NASTY = 'says "-> go" {now} [x] # no // not /* a */ | c \\ d <> <- *bold* _u_ [[note]] & <tag>'
# Fountain reads a backslash before punctuation as making it literal, as Markdown does (fountain.io/syntax).
FOUNTAIN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    cast, storm = library()
    quay = Situation(id="quay", title="Morning after", setting="The quay at dawn, nets drying.",
                     cast=["tove", "mara", "ilan"], beats=3)
    return [make_scene(cast, storm), make_scene(cast, storm, seed=1), make_scene(cast, quay, seed=2)]


@pytest.fixture(scope="module")
def nasty(scenes) -> Scene:
    scene = scenes[0].model_copy(deep=True)
    scene.cells[0][0].behaviour_text = NASTY
    scene.events[0].text = f"* - TODO: {NASTY}"
    scene.events.append(scene.events[0].model_copy(update={"text": "INCLUDE the harbourmaster. VAR x = 1"}))
    scene.title = "INT. *Storm* // at the bar"
    return scene


def _same(a: Scene, b: Scene) -> None:
    assert a.model_dump(exclude={"cells"}) == b.model_dump(exclude={"cells"})
    assert max(abs(x - y) for x, y in zip(a.vector(), b.vector())) <= 1e-6
    for row_a, row_b in zip(a.cells, b.cells):
        for ca, cb in zip(row_a, row_b):
            assert ca.model_dump(exclude={"felt", "shown", "mood", "stance", "subtext"}) == \
                cb.model_dump(exclude={"felt", "shown", "mood", "stance", "subtext"})
            assert [s.emotion for s in ca.subtext] == [s.emotion for s in cb.subtext]


# JSON ----------------------------------------------------------------------------------------------

def test_json_round_trips_one_scene_and_several(scenes):
    text = to_json(scenes[0])
    assert json.loads(text)["provenance"]["checkpoint"] == CHECKPOINT
    assert text.startswith('{\n  "situation"')
    assert from_json(text) == scenes[0]
    many = to_json(scenes)
    assert list(json.loads(many)) == ["scenes"]
    assert from_json(many) == scenes


# EmotionML -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(EMOTIONML / "emotionml.xsd")))


def _vocabulary(name: str) -> set[str]:
    voc = etree.parse(str(EMOTIONML / "emotion-voc.emotionml"))
    return {i.get("name") for i in voc.find(f"{EM}vocabulary[@id='{name}']").iterfind(f"{EM}item")}


@pytest.mark.parametrize("which", ["one", "several", "nasty"])
def test_emotionml_is_valid_w3c_emotionml(scenes, nasty, schema, which):
    doc = {"one": scenes[0], "several": scenes, "nasty": nasty}[which]
    tree = etree.fromstring(to_emotionml(doc).encode())
    assert schema.validate(tree), schema.error_log


def test_emotionml_uses_the_w3c_vocabularies(scenes):
    root = etree.fromstring(to_emotionml(scenes[0]).encode())
    assert root.get("category-set") == CATEGORY_SET and root.get("dimension-set") == DIMENSION_SET
    occ, pad = _vocabulary("occ-categories"), _vocabulary("pad-dimensions")
    assert occ == set(OCC_EMOTIONS) and pad == {"pleasure", "arousal", "dominance"}
    emotions = root.findall(f"{EM}emotion")
    assert len(emotions) == 2 * len(scenes[0].cast) * scenes[0].beats
    for emotion in emotions:
        names = [c.get("name") for c in emotion.iterfind(f"{EM}category")]
        assert sorted(names) == sorted(occ)
        dims = {d.get("name") for d in emotion.iterfind(f"{EM}dimension")}
        shown = emotion.get("id").endswith("-shown")
        assert dims == (set() if shown else pad)
        assert (emotion.get("expressed-through") is not None) == shown
        assert all(0 <= float(v.get("value")) <= 1 for v in emotion.iter(f"{EM}category", f"{EM}dimension"))
    felt = root.find(f"{EM}emotion[@id='mara-b3-felt']")
    fear = felt.find(f"{EM}category[@name='fear']")
    assert float(fear.get("value")) == pytest.approx(0.70)
    mood = scenes[0].cell("mara", 3).mood["pleasure"]
    assert float(felt.find(f"{EM}dimension[@name='pleasure']").get("value")) == pytest.approx((mood + 1) / 2)


def test_emotionml_reads_back_within_1e_6(scenes, nasty):
    _same(from_emotionml(to_emotionml(scenes[0])), scenes[0])
    back = from_emotionml(to_emotionml(scenes))
    assert isinstance(back, list) and len(back) == len(scenes)
    for a, b in zip(back, scenes):
        _same(a, b)
    _same(from_emotionml(to_emotionml(nasty)), nasty)


def test_emotionml_clamps_round_off_and_refuses_real_range_errors(scenes, schema):
    scene = scenes[0].model_copy(deep=True)
    scene.cells[0][0].felt["joy"] = -4e-4  # a paused run's estimate, projected to an early step's tolerance
    assert schema.validate(etree.fromstring(to_emotionml(scene).encode()))
    scene.cells[0][0].felt["joy"] = 1.5
    with pytest.raises(StorydiffError, match=r"mara\.felt\.joy@1 = 1.5 lies outside .* export it as JSON"):
        to_emotionml(scene)


# Fountain ------------------------------------------------------------------------------------------

def _parse_fountain(text: str):
    return screenplain.parse(io.StringIO(text))


def test_fountain_parses_into_the_expected_cues_and_dialogue(scenes):
    scene = scenes[0]
    text = to_fountain(scene, draft_date=date(2025, 1, 2))
    play = _parse_fountain(text)
    page = play.title_page
    assert page["Title"] == ["Storm at the bar"] and page["Draft date"] == ["2025-01-02"]
    assert "Credit" in page and "Author" in page
    notes = " ".join(page["Notes"])
    assert CHECKPOINT in notes and "seed 0" in notes and "heun, 12 steps" in notes
    slugs = [str(p.line) for p in play.paragraphs if isinstance(p, Slug)]
    assert slugs == ["INT. WHEELHOUSE OF THE PILOT BOAT - NIGHT"]
    dialogue = [p for p in play.paragraphs if isinstance(p, Dialog)]
    assert [str(d.character) for d in dialogue] == ["MARA", "ILAN"] * scene.beats
    for d in dialogue:
        (paren, first), (line_paren, line) = d.blocks
        assert paren and not line_paren and str(first).startswith("(") and str(line).startswith("[a line that")
    assert [str(t) for _, t in dialogue[0].blocks] == ["(angry, a touch proud)", "[a line that lets anger show]"]
    assert [str(t) for _, t in dialogue[4].blocks] == ["(evenly)", "[a line that gives nothing away, hides fear]"]
    actions = {str(line) for p in play.paragraphs if isinstance(p, Action) for line in p.lines}
    assert f"MARA {scene.cell('mara', 1).behaviour_text}." in actions
    assert "Ilan admits he has sold the family boat." in actions
    assert "[[MARA — mood: dependent; subtext: shows calm; feels fear 0.70]]" in text


def test_fountain_keeps_writer_text_literal(nasty, scenes):
    play = _parse_fountain(to_fountain([nasty, scenes[2]]))
    assert [str(p.line) for p in play.paragraphs if isinstance(p, Slug)] == [
        "INT. WHEELHOUSE OF THE PILOT BOAT - NIGHT", "EXT. QUAY - DAWN"]
    actions = [str(line) for p in play.paragraphs if isinstance(p, Action) for line in p.lines]
    assert any("not /* a */" in a and "*bold*" in a and "[ [note] ]" in a for a in actions)
    cues = [str(p.character) for p in play.paragraphs if isinstance(p, Dialog)]
    assert cues == ["MARA", "ILAN"] * nasty.beats + ["TOVE", "MARA", "ILAN"] * scenes[2].beats


def _fountain_reads(line: str) -> str:
    """The text a Fountain reader shows for a line, which must hold no emphasis or underline."""
    bare = FOUNTAIN_ESCAPE.sub("", line)
    assert "*" not in bare and "_" not in bare, f"emphasis or underline markup in {line!r}"
    return FOUNTAIN_ESCAPE.sub(r"\1", line)


@pytest.mark.parametrize("text", [
    NASTY,
    "She chalks _Estrela_ on the slate, then *Constance*",
    "Signs for Lot_7 and Lot_12 in the registry",  # screenplain underlines "7 and Lot"
    r"Writes \*not\* and \_this\_ as typed, then C:\Tide\tables",
])
def test_fountain_escapes_emphasis_underline_and_backslashes_in_writer_text(scenes, text):
    scene = scenes[0].model_copy(deep=True)
    scene.title, scene.setting = f"Storm {text}", f"The wheelhouse, at night. {text}"
    scene.cells[0][0].behaviour_text = text
    scene.provenance.situation = "storm_at_the_bar"
    fountain = to_fountain(scene)
    shown = [_fountain_reads(line) for line in fountain.splitlines()]  # every line: no markup anywhere
    literal = " ".join(text.split()).replace("[[", "[ [").replace("]]", "] ]")
    assert f"MARA {literal}." in shown and f"The wheelhouse, at night. {literal}" in shown
    assert f"Title: Storm {literal}" in shown and f"# Storm {literal}" in shown
    assert any("situation storm_at_the_bar" in line for line in shown)


@pytest.mark.parametrize("text", ["~ a lyric the crew sing", "===", "= the synopsis", "> THE END <", "> cut away",
                                  ".hidden", "!shouts", "@mara", "# one", "[[a note]] and more", "INT. a line",
                                  "I./E. the porch door", "_INT. THE HOUSE_ burns", "the gulls cut to:"])
def test_fountain_keeps_writer_lines_as_action(scenes, text):
    """Lyrics, page breaks, synopses, centred text, transitions, forcing, sections, notes and headings."""
    scene = scenes[0].model_copy(deep=True)
    scene.events[0] = scene.events[0].model_copy(update={"beat": 1, "text": text})
    line = to_fountain(scene).split("## Beat 1\n\n", 1)[1].split("\n", 1)[0]
    assert line[0] in "!\\"  # forced to be action, or its first character escaped
    assert _fountain_reads(line.removeprefix("!")) == text.replace("[[", "[ [").replace("]]", "] ]")


@pytest.mark.parametrize("setting, heading", [
    ("The wheelhouse of the pilot boat, at night, in a gale.", "INT. WHEELHOUSE OF THE PILOT BOAT - NIGHT"),
    ("The quay at dawn, nets drying.", "EXT. QUAY - DAWN"),
    ("Somewhere between two lies", ".SOMEWHERE BETWEEN TWO LIES"),
    ("", ".STORM AT THE BAR"),
    # a full stop after an abbreviation or an initial does not end the place; a sentence's still does
    ("St. Mary's church at dusk", "INT. ST. MARY'S CHURCH - DUSK"),
    ("Mr. and Mrs. Voss's kitchen, late at night", "INT. MR. AND MRS. VOSS'S KITCHEN - NIGHT"),
    ("The cellar of No. 9 Ropewalk Street at noon", "INT. CELLAR OF NO. 9 ROPEWALK STREET - NOON"),
    ("Mt. Tabor chapel at dawn, the bell still ringing.", "INT. MT. TABOR CHAPEL - DAWN"),
    ("J. M. Barrie's study by lamplight", "INT. J. M. BARRIE'S STUDY BY LAMPLIGHT"),
    ("Dr. Alvar's study. Rain on the window, night.", "INT. DR. ALVAR'S STUDY - NIGHT"),
    ("The slipway. Ft. Grey's light sweeps it at night.", "EXT. SLIPWAY - NIGHT"),
    ("The quay: the 3.30 ferry unloads at dawn", "EXT. QUAY - DAWN"),
    # the first time named, in words of more than one: three days after is not "day"
    ("South Quay at first light in April", "EXT. SOUTH QUAY - FIRST LIGHT"),
    ("The customs hall, three days after the wreck, toward nightfall", "INT. CUSTOMS HALL - NIGHTFALL"),
    ("The *Estrela*'s galley_2 at night", "INT. \\*ESTRELA\\*'S GALLEY\\_2 - NIGHT"),
])
def test_scene_heading_is_guessed_or_forced(setting, heading):
    assert scene_heading(setting, "Storm at the bar") == heading


# Ink -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def inkjs() -> Path:
    """The pinned inkjs under tests/ink/node_modules; `npm ci` only when it is missing."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH; the Ink export is checked with the inkjs compiler")
    if not (INK / "node_modules" / "inkjs" / "package.json").is_file():
        npm = shutil.which("npm")
        assert npm, "node is on PATH but npm is not; install npm or run `npm ci --prefix tests/ink`"
        done = subprocess.run([npm, "ci", "--prefix", str(INK), "--no-audit", "--no-fund"],
                              check=False, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci --prefix tests/ink failed:\n{done.stderr}"
    return INK / "play.js"


def _play(inkjs: Path, source: str, tmp_path: Path) -> dict:
    story = write_atomic(tmp_path / "story.ink", source)
    done = subprocess.run(["node", str(inkjs), str(story)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ink_compiles_and_plays_to_its_end(inkjs, scenes, tmp_path):
    scene = scenes[0]
    source = to_ink(scene)
    assert "=== beat_3 ===" in source and source.rstrip().endswith("-> END")
    result = _play(inkjs, source, tmp_path)
    assert result["errors"] == [] and result["warnings"] == []
    assert result["ended"] and result["choices"] == scene.beats - 1
    texts = [line["text"] for line in result["lines"]]
    for beat in range(1, scene.beats + 1):
        for cid, cue in (("mara", "MARA"), ("ilan", "ILAN")):
            assert f"{cue} {scene.cell(cid, beat).behaviour_text}." in texts
    tags = [tag for line in result["lines"] for tag in line["tags"]]
    assert "subtext: shows calm; feels fear 0.70" in tags
    assert "subtext: shows joy 0.60 (feels 0.05); feels shame 0.80" in tags
    assert any(tag.startswith("provenance:") and CHECKPOINT in tag for tag in tags)


def test_ink_plays_several_scenes_and_keeps_writer_text_literal(inkjs, nasty, scenes, tmp_path):
    result = _play(inkjs, to_ink([nasty, scenes[2]]), tmp_path)
    assert result["errors"] == [] and result["warnings"] == []
    assert result["ended"] and result["choices"] == nasty.beats + scenes[2].beats - 1
    texts = [line["text"] for line in result["lines"]]
    assert f"MARA {NASTY}." in texts
    assert f"* - TODO: {NASTY}" in texts
    assert "INCLUDE the harbourmaster. VAR x = 1" in texts
    assert result["globalTags"] == ["title: INT. *Storm* // at the bar / Morning after"]


# A story sampled twice --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def story_samples(tmp_path_factory, one_thread) -> list[Scene]:
    """`storydiff sample saltmarsh.story.xml -n 2`, in the CLI's order; one step, since only labels are checked."""
    out = tmp_path_factory.mktemp("story") / "saltmarsh.json"
    argv = ["sample", str(LIBRARY / "stories" / "saltmarsh.story.xml"), "-n", "2", "--steps", "1",
            "--device", "cpu", "--no-progress", "--format", "json", "-o", str(out)]
    assert main(argv) == 0
    scenes = from_json(out.read_text(encoding="utf-8"))
    assert len(scenes) == 14 and {s.provenance.story for s in scenes} == {"saltmarsh"}
    return scenes


def _story_labels(scenes: list[Scene]) -> list[str]:
    """What each scene should be called: its sample (seeds in the order they come), its place in the story."""
    seeds = list(dict.fromkeys(s.provenance.seed for s in scenes))
    return [f"sample {seeds.index(s.provenance.seed) + 1}, scene {s.provenance.part + 1} of 7" for s in scenes]


def test_story_samples_are_labelled_by_sample_and_scene_in_text_and_fountain(story_samples):
    labels = _story_labels(story_samples)
    assert sorted(labels) == sorted(f"sample {k}, scene {p} of 7" for k in (1, 2) for p in range(1, 8))
    sheets = to_text(story_samples)
    assert [line for line in sheets.splitlines() if line.startswith(("SAMPLE ", "SCENE "))] == \
        [label.upper() for label in labels]
    assert "scene 3 of 14" not in sheets.lower() and "· sample 1 ·" not in sheets
    one = [s for s in story_samples if s.provenance.seed == story_samples[0].provenance.seed]
    assert [line for line in to_text(one).splitlines() if line.startswith(("SAMPLE ", "SCENE "))] == \
        [f"SCENE {k} OF 7" for k in range(1, 8)]
    play = _parse_fountain(to_fountain(story_samples))
    sections = [str(p.text) for p in play.paragraphs if isinstance(p, Section) and p.level == 1]
    assert sections == [f"{s.title} — {label}" for s, label in zip(story_samples, labels)]


def test_story_samples_are_labelled_in_ink_knots_and_choices(inkjs, story_samples, tmp_path):
    labels = _story_labels(story_samples)
    source = to_ink(story_samples)
    assert "=== sample2_scene3_beat_1 ===" in source
    assert "+ [Next: sample 2, scene 1 of 7] -> sample2_scene1_beat_1" in source
    result = _play(inkjs, source, tmp_path)
    assert result["errors"] == [] and result["warnings"] == [] and result["ended"]
    assert result["choices"] == sum(s.beats for s in story_samples) - 1
    texts = [line["text"] for line in result["lines"]]
    assert [t for t in texts if t.endswith(" of 7)")] == [f"{s.title} ({label})" for s, label in zip(story_samples, labels)]


def test_story_samples_are_labelled_in_emotionml_and_read_back(story_samples, schema):
    labels = _story_labels(story_samples)
    root = etree.fromstring(to_emotionml(story_samples).encode())
    assert schema.validate(root), schema.error_log
    heads = root.findall(f"{EM}info/{{{SD}}}scenes/{{{SD}}}scene")
    assert [h.get("label") for h in heads] == labels
    ids = {e.get("id") for e in root.iterfind(f"{EM}emotion")}
    wake = story_samples[labels.index("sample 2, scene 3 of 7")]
    assert f"sample2_scene3-{wake.cast[0]}-b1-felt" in ids
    back = from_emotionml(to_emotionml(story_samples))
    assert [s.provenance for s in back] == [s.provenance for s in story_samples]


# export() and write_atomic --------------------------------------------------------------------------

def test_export_dispatches_every_format(scenes):
    assert set(FORMATS) == {"text", "json", "emotionml", "fountain", "ink"}
    for fmt in FORMATS:
        assert export(scenes[0], fmt).endswith("\n") and export(scenes, fmt).endswith("\n")
    assert export(scenes[0], "text") == render_beat_sheet(scenes[0])
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        export(scenes[0], "pdf")
    with pytest.raises(ValueError, match="empty"):
        export([], "json")


def test_write_atomic_replaces_the_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "scene.json"
    write_atomic(target, "first\n")
    os.chmod(target, 0o640)
    assert write_atomic(target, "second ✓\n") == target
    assert target.read_text(encoding="utf-8") == "second ✓\n"
    assert target.stat().st_mode & 0o777 == 0o640
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["scene.json"]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        write_atomic(tmp_path / "missing" / "scene.json", "x")


def test_write_atomic_writes_through_links_pipes_and_long_names(tmp_path):
    import threading

    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("TARGET")
    link.symlink_to(target)
    write_atomic(link, "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"  # the link kept, its target replaced
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    heard = []
    reader = threading.Thread(target=lambda: heard.append(fifo.read_text()))
    reader.start()
    write_atomic(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert heard == ["through the pipe\n"] and not fifo.is_file()  # a pipe cannot be replaced
    long = tmp_path / ("x" * 250 + ".txt")  # at the system's 255-byte limit: no room for a long temp name
    write_atomic(long, "fits")
    assert long.read_text() == "fits"
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_atomic(tmp_path, "x")


def test_write_atomic_leaves_the_old_file_intact_when_writing_fails_midway(tmp_path, monkeypatch):
    target = tmp_path / "scene.fountain"
    target.write_text("the draft the writer already has\n")
    real_fdopen = os.fdopen

    class Crashing(io.RawIOBase):
        """A file that writes half of what it is given, then fails like a full disk."""

        def __init__(self, fd: int, mode: str):
            self.file = real_fdopen(fd, mode)

        def write(self, data) -> int:
            self.file.write(bytes(data[: len(data) // 2]))
            self.file.flush()
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            self.file.close()
            super().close()

    monkeypatch.setattr(fileio.os, "fdopen", Crashing)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "a new draft " * 1000)
    assert target.read_text() == "the draft the writer already has\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scene.fountain"]
