"""Problems in user files, reported the way compilers do: `path:line:col: error: message`."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one place in one file; `code` is stable for tools, `message` is for people."""

    path: str
    line: int
    column: int
    code: str
    message: str

    def __str__(self) -> str:
        """One line, whatever the message quotes (a value may hold a line break)."""
        message = " ".join(self.message.split())
        return f"{self.path}:{self.line}:{self.column}: error: {message}"

    def as_dict(self) -> dict:
        return asdict(self)


class ValidationError(Exception):
    """Raised by the loaders; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid input")


class StorydiffError(Exception):
    """An error a user can act on (bad checkpoint, infeasible scene, bad argument); printed as one line."""


class InfeasibleError(StorydiffError):
    """No scene satisfies every rule: the message names the rows that conflict."""
