"""A scene of dramatic text as every reader returns it: who speaks, what, where, and who is on stage."""
from __future__ import annotations

from dataclasses import dataclass, field

# A chorus ("ALL", "Both Citizens") speaks, but is not one character.
GROUP_WORDS = ("all", "both")


def is_group(name: str) -> bool:
    """True for a chorus cue such as `ALL` or `Both Tribunes`."""
    words = name.split()
    return bool(words) and words[0].lower() in GROUP_WORDS


@dataclass(frozen=True)
class Speech:
    """One speech: its speakers as printed, its text, the 1-based source line, and who is on stage then."""

    speakers: tuple[str, ...]
    text: str
    line: int
    on_stage: frozenset[str]

    @property
    def characters(self) -> tuple[str, ...]:
        """The speakers that are characters (choruses left out)."""
        return tuple(s for s in self.speakers if not is_group(s))


@dataclass
class TextScene:
    """A scene read from a play or screenplay; `scene` names it within the play (heading, act and scene)."""

    play: str
    title: str
    scene: str
    speeches: list[Speech] = field(default_factory=list)
    source: str = ""

    @property
    def cast(self) -> list[str]:
        """Everyone on stage at some point, in order of first appearance."""
        seen: dict[str, None] = {}
        for speech in self.speeches:
            for name in speech.characters:
                seen.setdefault(name)
            for name in sorted(speech.on_stage - set(seen)):
                seen.setdefault(name)
        return list(seen)
