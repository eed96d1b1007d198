"""Who is on stage, followed through entrances and exits.

Stage directions are read two ways: the theatre's imperative ("Enter KENT and
EDMUND", "Exit", "Exeunt all but HAMLET", "Re-enter GHOST", "Dies") and the
screenplay's present tense ("Mara enters.", "Ilan storms out."). Only names the
reader already knows as speakers are tracked: a mute attendant never has an
observed beat, so following it would add nothing. Whoever speaks is on stage.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from .scene import is_group

_CLAUSES = re.compile(r"[.;!]\s*|\s+-{2,}\s*")
_ENTER = re.compile(r"^\s*(?:re-?)?enter\b", re.IGNORECASE)
_EXIT = re.compile(r"^\s*(?:exit|exeunt|dies)\b", re.IGNORECASE)
_ALL_BUT = re.compile(r"\ball\s+(?:but|except|save)\b", re.IGNORECASE)
_STAY = re.compile(r"^\s*manen?t\b", re.IGNORECASE)
_ARRIVES = re.compile(r"\b(?:enters?|comes? (?:in|back)|walks? in|arrives?|appears?|returns?)\b", re.IGNORECASE)
_LEAVES = re.compile(r"\b(?:exits?|leaves?|goes? out|walks? (?:out|off|away)|storms? (?:out|off)|runs? (?:out|off)"
                     r"|departs?|is gone|hurries (?:out|off)|dies)\b", re.IGNORECASE)


class Stage:
    """The set of characters on stage, updated by speeches and directions in reading order."""

    def __init__(self, names: Iterable[str]):
        known = {n for n in names if n.strip() and not is_group(n)}
        # Longest first, so "LADY CAPULET" is found before "CAPULET" can match inside it.
        self._names = sorted(known, key=len, reverse=True)
        self._patterns = [(n, re.compile(r"(?<![\w'])(?:" + "|".join(
            re.escape(v) for v in {n, n.upper(), n.title()}) + r")(?![\w'])")) for n in self._names]
        self.present: set[str] = set()
        self.last_speaker: str | None = None

    def speak(self, speakers: Iterable[str]) -> None:
        """A character who speaks is on stage."""
        for name in speakers:
            if not is_group(name):
                self.present.add(name)
                self.last_speaker = name

    def direct(self, direction: str) -> None:
        """Apply one stage direction, clause by clause."""
        for clause in filter(str.strip, _CLAUSES.split(direction)):
            self._clause(clause)

    def _find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, name) of each known name in the text, in reading order."""
        spans = []
        for name, pattern in self._patterns:
            for m in pattern.finditer(text):
                spans.append((m.start(), m.end(), name))
            text = pattern.sub(lambda m: " " * len(m.group()), text)
        return sorted(spans)

    def _clause(self, clause: str) -> None:
        spans = self._find(clause)
        names = {name for _, _, name in spans}
        if _ENTER.match(clause) or _STAY.match(clause):
            self.present |= names
        elif _EXIT.match(clause):
            if _ALL_BUT.search(clause):
                self.present &= names
            elif names:
                self.present -= names
            elif clause.strip().lower().startswith("exeunt"):
                self.present.clear()
            elif self.last_speaker is not None:
                self.present.discard(self.last_speaker)
        else:
            # Present tense: each name takes the verb between it and the next name.
            for k, (_, end, name) in enumerate(spans):
                tail = clause[end:spans[k + 1][0] if k + 1 < len(spans) else len(clause)]
                if _LEAVES.search(tail):
                    self.present.discard(name)
                elif _ARRIVES.search(tail):
                    self.present.add(name)
