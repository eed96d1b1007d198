"""`storydiff validate STORY.xml` checks the scenes as one chain: what one scene ends with, the next starts from."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import LIBRARY, locate, write_night_and_morning

from storydiff import loader
from storydiff.cli import main
from storydiff.constraints import carried_state, compile_constraints
from storydiff.errors import InfeasibleError
from storydiff.feasibility import require_story_feasible, story_polytope
from storydiff.models import Pin

# Each scene alone is feasible; one after the other they are not, through what carries over:
# trust ends at most 0.2 but starts at least 0.9 (stance moves 0.2 at most across the cut);
# pleasure ends at least 0.9 but starts at most -0.5 (mood keeps 0.7 of itself, mara's pull 0.3).
# Per layer: the variable, then each scene's pin as written and in words.
CHAINS = {
    "stance": ("mara.stance.ilan.trust", ('max="0.2"', "≤ 0.2"), ('min="0.9"', "≥ 0.9")),
    "mood": ("mara.mood.pleasure", ('min="0.9"', "≥ 0.9"), ('max="-0.5"', "≤ -0.5")),
}


def write_story(folder: Path, layer: str, carry: str) -> Path:
    var, (night, _), (morning, _) = CHAINS[layer]
    return write_night_and_morning(folder, f"{var}@4 {night}", f"{var}@1 {morning}", carry)


@pytest.mark.parametrize("layer", sorted(CHAINS))
def test_scenes_that_cannot_follow_each_other_are_one_error_at_the_scene_reference(tmp_path, layer, capsys):
    story = write_story(tmp_path, layer, "mood stance")
    situations = tmp_path / "situations"
    assert main(["validate", str(situations), "--characters", str(LIBRARY)]) == 0  # alone, each is fine
    capsys.readouterr()
    assert main(["validate", str(story), "--characters", str(LIBRARY)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    row, column = locate(story.read_text(encoding="utf-8"), "<scene", 2)
    head = f"{story}:{row}:{column}: error: scene 2 (morning) cannot follow scene 1 (night): these cannot all hold: "
    assert line.startswith(head)
    var, (_, night), (_, morning) = CHAINS[layer]
    assert f"scene 1: pin {var} {night} at beat 4 (night.situation.xml:9)" in line
    assert f"scene 2: pin {var} {morning} at beat 1 (morning.situation.xml:9)" in line
    assert f"scene 2: {var} at beat 1 carried over from scene 1's beat 4" in line
    # a mood conflict takes in every emotion's natural range at that beat: said once per layer, not ~20 times
    assert line.count("natural range") <= 2


@pytest.mark.parametrize("layer", sorted(CHAINS))
def test_what_is_not_carried_does_not_link_the_scenes(tmp_path, layer, capsys):
    other = {"stance": "mood", "mood": "stance"}[layer]
    story = write_story(tmp_path, layer, other)
    assert main(["validate", str(story), "--characters", str(LIBRARY)]) == 0
    assert capsys.readouterr().out == ""


def test_the_chain_says_what_sampling_compiles_scene_by_scene():
    """Each link row, at any pair of scenes, is the continuity row compiled from the first scene's last beat."""
    cast = loader.load_characters(LIBRARY)
    story = loader.load_story(LIBRARY / "stories" / "saltmarsh.story.xml", cast)
    chain = story_polytope(cast, story)
    y = torch.rand(len(chain.columns), generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    value = dict(zip(chain.columns, y.tolist()))
    joint = chain.A @ y
    checked = 0
    for k in range(2, len(story.scenes) + 1):
        before = [c for c in chain.columns if c.startswith(f"scene{k - 1}/")]
        previous = carried_state([c.partition("/")[2] for c in before], [value[c] for c in before],
                                 story.scenes[k - 1].carry)
        alone = compile_constraints(cast, story.situations[k - 1], previous)
        mine = torch.tensor([value[f"scene{k}/{c}"] for c in alone.columns], dtype=torch.float64)
        alone_y = alone.A @ mine
        for r, name in enumerate(alone.names):
            if name.startswith("continuity:"):
                i = chain.names.index(f"scene{k}/{name}")
                assert float(joint[i] - chain.lower[i]) == pytest.approx(float(alone_y[r] - alone.lower[r]), abs=1e-12)
                assert float(chain.upper[i] - joint[i]) == pytest.approx(float(alone.upper[r] - alone_y[r]), abs=1e-12)
                checked += 1
    assert checked > 0



def _night_and_morning(folder: Path, night: str, morning: str):
    """The story of `write_night_and_morning`, loaded with the bundled cast."""
    cast = loader.load_characters(LIBRARY)
    return loader.load_story(write_night_and_morning(folder, night, morning, "stance"), cast), cast


@pytest.mark.slow
def test_sampling_a_story_whose_scenes_cannot_follow_fails_before_any_scene(tmp_path, engine):
    story, cast = _night_and_morning(tmp_path, 'mara.stance.ilan.trust@4 max="0.2"',
                                     'mara.stance.ilan.trust@1 min="0.9"')
    sampled = []
    with pytest.raises(InfeasibleError, match=r"night-and-morning.story.xml:\d+:\d+: scene 2 \(morning\) cannot "
                                              r"follow scene 1 \(night\)"):
        engine.sample_story(story, cast, steps=1, progress=sampled.append)
    assert sampled == []


def test_a_scene_that_cannot_be_played_alone_is_named_by_its_own_file(tmp_path):
    # the chain breaks too, but the writer's fix is in morning's file: mara's trust in ilan stays within 0.5 of 0.6
    story, cast = _night_and_morning(tmp_path, 'mara.stance.ilan.trust@4 max="1"', 'mara.stance.ilan.trust@2 max="0.05"')
    with pytest.raises(InfeasibleError, match=r"morning.situation.xml:\d+:\d+: .*trust") as raised:
        require_story_feasible(cast, story)
    assert "cannot follow" not in str(raised.value)


@pytest.mark.slow
def test_a_pin_given_to_sample_story_is_checked_with_the_chain(tmp_path, engine):
    # the pin holds both scenes' trust ≤ 0.45 at beat 4: morning alone can fall from 0.9 to 0.3 by then,
    # but cannot start at 0.9 after a night that ended at most 0.2 below it
    story, cast = _night_and_morning(tmp_path, 'mara.stance.ilan.trust@1 max="1"',
                                     'mara.stance.ilan.trust@1 min="0.9"')
    sampled = []
    with pytest.raises(InfeasibleError, match="scene 2 .morning. cannot follow scene 1"):
        engine.sample_story(story, cast, steps=1, progress=sampled.append,
                            pins=[Pin(var="mara.stance.ilan.trust@4", max=0.45)])
    assert sampled == []


@pytest.mark.slow
def test_a_sample_that_ends_where_the_next_scene_cannot_start_says_to_sample_again(tmp_path, engine):
    # mara trusts ilan (0.6; her trust stays within 0.5 of it) and night lets trust fall to 0.7 by beat 2, so to
    # 0.3 by beat 4; morning starts at 0.1, 0.2 below the least night can end with: only a night that falls as
    # fast as trust may leads into morning, and the prior keeps trust near 0.6
    story, cast = _night_and_morning(tmp_path, 'mara.stance.ilan.trust@2 min="0.7"',
                                     'mara.stance.ilan.trust@1 max="0.1"')
    with pytest.raises(InfeasibleError, match=r"story 'night-and-morning': scene 2 \(morning\) cannot start where "
                                              r"this sample of scene 1 ended .* another seed\. .*trust"):
        engine.sample_story(story, cast, steps=1, seed=0)
