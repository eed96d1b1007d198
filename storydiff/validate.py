"""`storydiff validate`: check writers' files and folders the way a compiler checks sources.

The kind of each file comes from its root element, not its name. Characters and
cultures are checked as a library (a folder) or alone (a file); situations and
stories against the cast found for them (DESIGN §3), then, when the feasibility
module is installed, for whether any scene can satisfy them at all, and a story's scenes for
whether they can follow one another.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from . import loader, xmlio
from .errors import Problem, StorydiffError, ValidationError
from .models import Cast, Situation, Story

PathLike = str | Path


class PathError(StorydiffError):
    """A path given to validate that does not exist or cannot be read: a usage error, not invalid input."""

    exit_code = 2


def _readable(path: Path) -> Path:
    try:
        path.open("rb").close()
    except OSError as e:
        raise PathError(f"{path}: cannot read ({e.strerror or e})") from None
    return path


def expand(paths: Sequence[PathLike]) -> list[tuple[Path, list[Path]]]:
    """Each argument with the XML files it names (a folder: every *.xml below it)."""
    expanded = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            expanded.append((path, [_readable(p) for p in sorted(path.rglob("*.xml")) if p.is_file()]))
        elif path.exists():
            expanded.append((path, [_readable(path)]))
        else:
            raise PathError(f"{arg}: no such file or folder")
    return expanded


def _feasibility() -> ModuleType | None:
    """`storydiff.feasibility` when it exists: validate checks files without it."""
    name = f"{__package__}.feasibility"
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if getattr(e, "name", None) != name:
            raise
        return None


def feasibility_problems(cast: Cast, situation: Situation) -> list[Problem]:
    """Hook for `storydiff.feasibility.explain_infeasible(cast, situation)`, used when that module exists."""
    feasibility = _feasibility()
    return list(feasibility.explain_infeasible(cast, situation)) if feasibility else []


def story_problems(cast: Cast, story: Story) -> list[Problem]:
    """Whether a story's scenes, each feasible alone, can follow one another: mood and stance carry
    over (DESIGN §3), so a chain that breaks would otherwise pass here and fail only when sampled."""
    feasibility = _feasibility()
    return list(feasibility.explain_story_infeasible(cast, story)) if feasibility else []


class _Validation:
    """One run: the problems found so far and the casts already loaded, by folder."""

    def __init__(self, characters: PathLike | None):
        if characters is not None and not Path(characters).is_dir():
            raise PathError(f"--characters {characters}: no such folder")
        self.characters = characters
        self.problems: list[Problem] = []
        self.casts: dict[Path, Cast | None] = {}
        self.library_problems: dict[Path, list[Problem]] = {}

    def _try(self, load, *args):
        try:
            return load(*args)
        except ValidationError as e:
            self.problems += e.problems
            return None

    def cast_for(self, path: Path) -> Cast | None:
        folder = loader.find_characters_dir(path, self.characters)
        key = folder.resolve()
        if key not in self.casts:
            self.casts[key] = self._try(loader.load_characters, folder)
        return self.casts[key]

    def library(self, argument: Path, files: list[Path]) -> None:
        if argument.is_dir():
            self._try(loader.load_cast, files, True, str(argument))
            return
        # One file is checked within its library, so that its references (relations, cultures) are
        # resolved; only its own problems are reported. A file outside any library stands alone.
        folder = loader.find_characters_dir(argument, self.characters).resolve()
        if not argument.resolve().is_relative_to(folder):
            self._try(loader.load_characters, argument)
            return
        if folder not in self.library_problems:  # loaded once, however many of its files are named
            try:
                loader.load_characters(folder)
                self.library_problems[folder] = []
            except ValidationError as e:
                self.library_problems[folder] = e.problems
        self.problems += [p for p in self.library_problems[folder] if Path(p.path).resolve() == argument.resolve()]

    def scene(self, path: Path, kind: str) -> None:
        cast = self.cast_for(path)
        if cast is None:
            self._try(loader.read_model, path)
            return
        if kind == "situation":
            story, situations = None, [self._try(loader.load_situation, path, cast)]
        else:
            story = self._try(loader.load_story, path, cast)
            situations = story.situations if story else []
        alone = [p for situation in filter(None, situations) for p in feasibility_problems(cast, situation)]
        self.problems += alone
        if story is not None and not alone:
            self.problems += story_problems(cast, story)

    def kind(self, path: Path) -> str | None:
        doc = self._try(xmlio.parse, path)
        return doc.kind if doc else None

    def argument(self, argument: Path, files: list[Path]) -> None:
        kinds = {path: self.kind(path) for path in files}
        library = [p for p in files if kinds[p] in ("character", "culture")]
        if library:
            self.library(argument, library)
        for path in files:
            if kinds[path] in ("situation", "story"):
                self.scene(path, kinds[path])


def validate_paths(paths: Sequence[PathLike], characters: PathLike | None = None) -> list[Problem]:
    """Every problem in the given files and folders (empty when all are valid).

    Raises PathError for a path that does not exist or cannot be read.
    """
    run = _Validation(characters)
    for argument, files in expand(paths):
        run.argument(argument, files)
    return list(dict.fromkeys(run.problems))
