"""The text beat sheet: what a writer reads first. Scenes come from random states, not the sampler."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import storydiff
from storydiff.layout import FELT, MOOD, SHOWN, STANCE_START, StateLayout
from storydiff.models import Cast, Situation
from storydiff.render import (
    TEMPERAMENTS,
    cues,
    mood_notes,
    provenance_summary,
    render_beat_sheet,
    render_beat_sheets,
    scene_labels,
    subtext_summary,
    temperament,
)
from storydiff.scene import Provenance, Scene
from storydiff.vocab import OCC_EMOTIONS

LIBRARY = Path(__file__).resolve().parents[1] / "characters"
CHECKPOINT = "0123456789abcdef"


def _emotion(name: str) -> int:
    return OCC_EMOTIONS.index(name)


def library() -> tuple[Cast, Situation]:
    cast = storydiff.load_characters(LIBRARY)
    return cast, storydiff.load_situation(LIBRARY / "situations" / "storm.situation.xml", cast)


def make_scene(cast: Cast, situation: Situation, seed: int = 0) -> Scene:
    """A scene from a random state in the right ranges, with three cells set by hand.

    Mara at beat 1 shows exactly what she feels (anger 0.62, pride 0.30); at beat 3 she
    shows nothing and feels fear 0.70. Ilan at beat 3 masks shame 0.80 with joy 0.60.
    """
    g = torch.Generator().manual_seed(seed)
    layout = StateLayout(situation.cast, situation.beats)
    c, t, f = layout.shape
    x = torch.zeros(c, t, f)
    felt = torch.rand(c, t, len(OCC_EMOTIONS), generator=g) ** 3
    x[..., FELT] = felt
    x[..., SHOWN] = (felt * torch.rand(felt.shape, generator=g) + 0.3 * torch.rand(felt.shape, generator=g) ** 4)
    x[..., MOOD] = torch.rand(c, t, 3, generator=g) * 2 - 1
    x[..., STANCE_START:] = torch.rand(c, t, f - STANCE_START, generator=g) * 2 - 1
    mara, ilan = situation.cast.index("mara"), situation.cast.index("ilan")
    x[mara, 0, FELT] = x[mara, 0, SHOWN] = 0.0
    for layer in (FELT, SHOWN):
        x[mara, 0, layer.start + _emotion("anger")], x[mara, 0, layer.start + _emotion("pride")] = 0.62, 0.30
    x[mara, 2, FELT] = x[mara, 2, SHOWN] = 0.0
    x[mara, 2, FELT.start + _emotion("fear")], x[mara, 2, SHOWN.start + _emotion("fear")] = 0.70, 0.05
    x[ilan, 2, FELT] = x[ilan, 2, SHOWN] = 0.0
    x[ilan, 2, FELT.start + _emotion("shame")], x[ilan, 2, FELT.start + _emotion("joy")] = 0.80, 0.05
    x[ilan, 2, SHOWN.start + _emotion("joy")] = 0.60
    provenance = Provenance(storydiff=storydiff.__version__, checkpoint=CHECKPOINT, seed=seed, sampler="heun",
                            steps=12, guidance=1.5, situation=situation.id, sample=seed)
    return Scene.from_tensor(x, cast, situation, provenance)


@pytest.fixture(scope="module")
def storm() -> Scene:
    return make_scene(*library())


def _beat(sheet: str, beat: int) -> str:
    """The part of the sheet under one beat's rule."""
    return sheet.split(f"── Beat {beat} ")[1].split("── Beat ")[0]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_header_names_the_scene_and_its_cast(storm):
    sheet = render_beat_sheet(storm)
    assert sheet.startswith(storm.title.upper() + "\n")
    assert _flat(storm.setting) in _flat(sheet)
    assert "Cast: MARA (Mara Voss), ILAN (Ilan Voss) · 8 beats" in sheet


def test_every_beat_says_who_does_what(storm):
    sheet = render_beat_sheet(storm)
    for beat in range(1, storm.beats + 1):
        section = _flat(_beat(sheet, beat))
        for cid, cue in cues(storm).items():
            assert f"{cue} {storm.cell(cid, beat).behaviour_text}" in section
        for event in (e for e in storm.events if e.beat == beat):
            assert f"! {_flat(event.text)}" in section


def test_shown_emotions_in_words_with_intensity(storm):
    assert "shows: anger 0.62, pride 0.30" in _beat(render_beat_sheet(storm), 1)


def test_subtext_is_set_apart_where_felt_and_shown_differ(storm):
    sheet = render_beat_sheet(storm)
    mara_first = _beat(sheet, 1).split("ILAN")[0]
    assert "subtext" not in mara_first  # she shows what she feels
    beat3 = _beat(sheet, 3)
    assert "\n          ┆ subtext: shows calm; feels fear 0.70\n" in beat3
    assert "┆ subtext: shows joy 0.60 (feels 0.05); feels shame 0.80" in _flat(beat3)


def test_footer_lets_a_writer_regenerate(storm):
    footer = _flat(render_beat_sheet(storm).rsplit("─" * 10, 1)[1])
    for part in (f"storydiff {storydiff.__version__}", f"checkpoint {CHECKPOINT}", "seed 0", "heun, 12 steps",
                 "guidance 1.5", "projected"):
        assert part in footer
    assert "regenerate: storydiff sample <storm.xml> --seed 0 --sampler heun --steps 12 --guidance 1.5" in footer


def test_width_stays_within_100_columns(storm):
    long = storm.model_copy(deep=True)
    long.cells[0][0].behaviour_text = "hesitates " * 40
    long.setting = "a-very-long-unbroken-setting-" * 8
    for sheet in (render_beat_sheet(long), render_beat_sheets([storm, long]), render_beat_sheet(storm, width=60)):
        assert max(len(line) for line in sheet.splitlines()) <= 100


def test_mood_words_are_mehrabians_octants():
    assert len(set(TEMPERAMENTS.values())) == 8
    assert temperament({"pleasure": 0.5, "arousal": 0.4, "dominance": 0.3}) == "exuberant"
    assert temperament({"pleasure": -0.5, "arousal": 0.4, "dominance": -0.3}) == "anxious"
    assert temperament({"pleasure": -0.5, "arousal": 0.4, "dominance": 0.3}) == "hostile"
    assert temperament({"pleasure": 0.5, "arousal": -0.4, "dominance": 0.3}) == "relaxed"
    assert temperament({"pleasure": 0.05, "arousal": -0.05, "dominance": 0.0}) == "neutral"


def test_mood_is_named_at_the_start_and_when_it_turns_notably(storm):
    calm = storm.model_copy(deep=True)
    for beat, (p, a, d) in enumerate([(0.5, -0.05, 0.3), (0.5, 0.05, 0.3), (-0.6, 0.5, -0.4)], start=1):
        calm.cell("mara", beat).mood = {"pleasure": p, "arousal": a, "dominance": d}
    notes = mood_notes(calm)
    assert notes[("mara", 1)] == "relaxed"
    assert ("mara", 2) not in notes  # crosses an octant boundary by a hair: no flicker
    assert notes[("mara", 3)] == "anxious"
    assert "mood: relaxed" in _beat(render_beat_sheet(calm), 1)


def test_subtext_summary_is_none_without_subtext(storm):
    assert subtext_summary(storm.cell("mara", 1)) is None
    assert subtext_summary(storm.cell("mara", 3)) == "shows calm; feels fear 0.70"


def test_several_samples_each_keep_their_provenance():
    cast, situation = library()
    scenes = [make_scene(cast, situation, seed) for seed in (0, 1)]
    sheets = render_beat_sheets(scenes)
    assert "SAMPLE 1 OF 2" in sheets and "SAMPLE 2 OF 2" in sheets
    assert sheets.count(f"checkpoint {CHECKPOINT}") == 2
    assert "-n 2 (take sample 2)" in _flat(sheets)
    other = situation.model_copy(update={"id": "after", "title": "After the storm"})
    assert "SCENE 2 OF 2" in render_beat_sheets([scenes[0], make_scene(cast, other)])


def _story_scene(scene: Scene, seed: int, part: int) -> Scene:
    """The scene as `engine.sample_story` labels it: the story's seed, its place in the story, batch place 0."""
    provenance = scene.provenance.model_copy(update={"story": "saltmarsh", "seed": seed, "part": part, "sample": 0})
    return scene.model_copy(update={"provenance": provenance})


def test_scene_labels_name_the_sample_and_the_scene_of_the_story(storm):
    one = [_story_scene(storm, 0, part) for part in range(3)]
    assert [label.text for label in scene_labels(one)] == ["scene 1 of 3", "scene 2 of 3", "scene 3 of 3"]
    assert [label.key for label in scene_labels(one)] == ["scene1", "scene2", "scene3"]
    # two samples of the story, interleaved: numbered in the order their seeds first come
    two = [_story_scene(storm, seed, part) for part in range(3) for seed in (1000, 0)]
    assert [label.text for label in scene_labels(two)] == [
        "sample 1, scene 1 of 3", "sample 2, scene 1 of 3", "sample 1, scene 2 of 3",
        "sample 2, scene 2 of 3", "sample 1, scene 3 of 3", "sample 2, scene 3 of 3"]
    assert scene_labels(two)[3].key == "sample2_scene2"
    sheets = render_beat_sheets(two)
    assert "SAMPLE 2, SCENE 3 OF 3" in sheets and "SCENE 3 OF 6" not in sheets
    # the footer names the scene of the story, not a batch place that is always 1
    assert "story saltmarsh, scene 3 · heun" in provenance_summary(two[5].provenance)
    assert "sample 1" not in provenance_summary(two[5].provenance)


def test_scene_labels_of_samples_and_of_mixed_scenes_stay_distinct(storm):
    cast, situation = library()
    samples = [make_scene(cast, situation, seed) for seed in range(4)]
    assert [label.text for label in scene_labels(samples)] == [f"sample {k} of 4" for k in range(1, 5)]
    assert [label.key for label in scene_labels(samples)] == ["sample1", "sample2", "sample3", "sample4"]
    assert "sample 3 ·" in provenance_summary(samples[2].provenance)
    twice = [_story_scene(storm, 0, 1)] * 2  # one scene given twice: the list's order tells them apart
    assert [label.text for label in scene_labels(twice)] == ["sample 1 of 2", "sample 2 of 2"]
    other = situation.model_copy(update={"id": "after", "title": "After the storm"})
    mixed = [_story_scene(storm, 0, 0), make_scene(cast, other)]  # a story's scene beside a lone one
    assert [label.text for label in scene_labels(mixed)] == ["scene 1 of 2", "scene 2 of 2"]


def test_behaviour_of_the_last_beat_gives_way_to_a_near_tie_but_not_to_a_poor_fit():
    from storydiff.models import Behaviour
    from storydiff.scene import choose_behaviour

    calm = {d: 0.0 for d in ("pleasure", "arousal", "dominance")}
    shown = {e: 0.0 for e in OCC_EMOTIONS}  # nothing shown: the mood (here neutral) is what is read
    best = Behaviour(id="best", pleasure=0.0, arousal=0.0, dominance=0.1, text="")
    close = Behaviour(id="close", pleasure=0.0, arousal=0.0, dominance=-0.15, text="")
    far = Behaviour(id="far", pleasure=0.9, arousal=0.9, dominance=0.9, text="")
    assert choose_behaviour([best, close, far], shown, calm).id == "best"
    assert choose_behaviour([best, close, far], shown, calm, previous="best").id == "close"
    assert choose_behaviour([best, far], shown, calm, previous="best").id == "best"


def test_values_a_hair_below_zero_read_as_zero_not_minus_zero():
    import math

    cast, situation = library()
    layout = StateLayout(situation.cast, situation.beats)
    x = torch.full(layout.shape, -1e-9)  # projection round-off just under a bound of 0
    provenance = Provenance(storydiff=storydiff.__version__, checkpoint=CHECKPOINT, seed=0, sampler="heun",
                            steps=12, guidance=1.0, situation=situation.id, sample=0)
    cell = Scene.from_tensor(x, cast, situation, provenance).cells[0][0]
    values = [*cell.felt.values(), *cell.shown.values(), *cell.mood.values()]
    assert values and all(v == 0.0 and math.copysign(1.0, v) == 1.0 for v in values)
