"""What the writer opened: a situation or a story, its cast, and the files to watch for changes.

A story is drafted scene by scene; each scene starts from the mood and stance the
previous one ended with (DESIGN §3), so only the current scene is ever sampled.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from storydiff.loader import (
    bundled_library,
    find_characters_dir,
    library_files,
    load_characters,
    load_situation,
    load_story,
    scene_path,
)
from storydiff.models import Cast, Situation, Story
from storydiff.xmlio import parse

# The bundled example a writer sees first (as `storydiff demo` does).
DEMO_SITUATION = Path("situations") / "storm.situation.xml"


@dataclass
class Opened:
    """A loaded situation or story: one situation per scene, in order, with the cast they use."""

    path: Path
    characters: Path
    cast: Cast
    situations: list[Situation]
    story: Story | None = None
    explicit_characters: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """`storm` for storm.situation.xml: the stem drafts and exports are named after."""
        return self.path.name.split(".")[0]

    def carry(self, part: int) -> list[str]:
        """What flows into scene `part` from the one before (nothing for the first scene)."""
        return list(self.story.scenes[part].carry) if self.story and part > 0 else []

    def watched(self) -> list[Path]:
        """Every file whose change should reload the scene."""
        files = [self.path, *library_files(self.characters)]
        if self.story:
            files += [scene_path(self.path, s.href) for s in self.story.scenes]
        return list(dict.fromkeys(files))


def demo_situation() -> Path:
    return bundled_library() / DEMO_SITUATION


def is_bundled(path: Path) -> bool:
    """True for files inside the installed example library (never written next to)."""
    try:
        Path(path).resolve().relative_to(bundled_library().resolve())
    except ValueError:
        return False
    return True


def open_target(path: str | Path, characters: str | None = None) -> Opened:
    """Load a situation or a story; raises ValidationError (file:line:col problems) or OSError, and
    InfeasibleError for a story whose scenes cannot follow one another (found now, not at its fifth scene)."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"{target}: no such file; open a .situation.xml, .story.xml or .draft.json")
    folder = find_characters_dir(target, characters)
    cast = load_characters(folder)
    if parse(target).kind == "story":
        from storydiff.feasibility import require_story_feasible  # scipy's LP: only when a story is opened

        story = load_story(target, cast)
        require_story_feasible(cast, story)
        return Opened(target, Path(folder), cast, list(story.situations), story, characters)
    return Opened(target, Path(folder), cast, [load_situation(target, cast)], None, characters)


def is_draft(path: str | Path) -> bool:
    return str(path).endswith(".json")


class FileWatch:
    """Modification times of a set of files; `changed()` says which moved since the last look.

    Polled from a timer: no extra thread, and an editor's save-by-rename is seen too.
    """

    def __init__(self, paths: list[Path]):
        self.stamps = {p: self._stamp(p) for p in paths}

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def changed(self) -> list[Path]:
        moved = []
        for path, stamp in self.stamps.items():
            now = self._stamp(path)
            if now != stamp:
                self.stamps[path] = now
                moved.append(path)
        return moved
