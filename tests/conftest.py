"""Shared fixtures: where the repository and its example library are, and a scratch copy to break."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "characters"

# The suite draws the same property-test examples on every run, so that a failure reproduces and a
# change is judged on the same cases as the one before it; `HYPOTHESIS_PROFILE=explore pytest` draws new
# ones. (Random sparse polytopes now and then have binding rows so nearly dependent that the 1e-6
# tolerance allows an answer 1e-5 from OSQP's: the distance checks hold for the drawn examples, not for
# every polytope.)
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def locate(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """(line, column), both from 1, of the n-th occurrence of `needle` in `text`."""
    at = -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


SITUATION = """<?xml version="1.0" encoding="UTF-8"?>
<situation xmlns="https://storydiff.org/ns/1.0" version="1.0" id="{id}">
  <cast>
    <member ref="mara"/>
    <member ref="ilan"/>
  </cast>
  <beats count="{beats}"/>
  <pins>
{pins}
  </pins>
</situation>
"""
STORY = """<?xml version="1.0" encoding="UTF-8"?>
<story xmlns="https://storydiff.org/ns/1.0" version="1.0" id="night-and-morning">
  <scene href="../situations/night.situation.xml"/>
  <scene href="../situations/morning.situation.xml" carry="{carry}"/>
</story>
"""


def situation_xml(id: str, beats: int, pins: list[tuple[str, str]]) -> str:
    """A situation of mara and ilan with the given pins, each (`var@beat`, `min="…"`-style attributes)."""
    lines = "\n".join(f'    <pin var="{var}" {bound}/>' for var, bound in pins)
    return SITUATION.format(id=id, beats=beats, pins=lines)


def write_night_and_morning(folder: Path, night: str, morning: str, carry: str) -> Path:
    """A two-scene story of mara and ilan under `folder`, each scene with one pin (`"var@beat min=…"`)."""
    (folder / "situations").mkdir()
    (folder / "stories").mkdir()
    for id, pin in (("night", night), ("morning", morning)):
        var, bound = pin.split(" ", 1)
        (folder / "situations" / f"{id}.situation.xml").write_text(situation_xml(id, 4, [(var, bound)]),
                                                                    encoding="utf-8")
    story = folder / "stories" / "night-and-morning.story.xml"
    story.write_text(STORY.format(carry=carry), encoding="utf-8")
    return story


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped example library (XML files only)."""
    target = tmp_path / "characters"
    shutil.copytree(LIBRARY, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


@pytest.fixture(scope="module")
def one_thread():
    """Scene-sized tensors run fastest, and steadiest on a busy machine, on one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine(one_thread):
    """The bundled checkpoint on the CPU (modules that need another network define their own)."""
    import storydiff

    return storydiff.Engine.default(device="cpu")


@pytest.fixture(autouse=True, scope="session")
def embedding_cache(tmp_path_factory):
    """Description embeddings are cached in a scratch folder during tests, never in the user's home."""
    patch = pytest.MonkeyPatch()
    patch.setenv("STORYDIFF_CACHE", str(tmp_path_factory.mktemp("embedding-cache")))
    yield
    patch.undo()
