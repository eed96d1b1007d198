"""Why a scene has no solution: a small set of named rows that cannot all hold, in plain words.

`conflicting_rows` finds an irreducible infeasible subsystem (IIS; Chinneck 2008, Feasibility and
Infeasibility in Optimization, ch. 6) with HiGHS through scipy.optimize.linprog:
1. an elastic phase-1 LP (every row may be violated at unit cost); its optimal duals are a Farkas
   certificate, non-zero on a few rows only, and those rows already conflict;
2. a deletion filter on that support: whole rule families first, then row by row, structure
   before rules and the writer's own pins and events last, so that what remains is minimal and
   names what a writer is most likely to change. These LPs have a handful of rows.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linprog

from .constraints import compile_constraints, row_family
from .errors import Problem, StorydiffError
from .models import Cast, Situation
from .polytope import Polytope

# The deletion filter drops families in this order: the earlier, the less likely to be blamed.
DELETION_ORDER = ("box", "volatility", "relation", "mood-pull", "continuity", "range", "display", "culture",
                  "event", "pin")
_DUAL_TOL = 1e-9
_AUDIENCE = {"public": "in public", "private": "in private", "superior": "before a superior",
             "inferior": "before an inferior", "intimate": "among intimates"}


class _System:
    """`lower ≤ A·y ≤ upper` in scipy form, with a feasibility test on any subset of rows."""

    def __init__(self, polytope: Polytope):
        A = polytope.A if polytope.A.layout == torch.sparse_csr else polytope.A.to_sparse_csr()
        self.A = sp.csr_matrix((A.values().double().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()),
                               shape=tuple(A.shape))
        self.lower = polytope.lower.double().numpy()
        self.upper = polytope.upper.double().numpy()

    def _inequalities(self, rows: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
        """Rows as `A_ub·y ≤ b_ub` (upper bounds, then negated lower bounds) and which rows they are."""
        hi, lo = rows[np.isfinite(self.upper[rows])], rows[np.isfinite(self.lower[rows])]
        A_ub = sp.vstack([self.A[hi], -self.A[lo]]).tocsr()
        return A_ub, np.r_[self.upper[hi], -self.lower[lo]], hi, lo

    def feasible(self, rows: np.ndarray) -> bool:
        A_ub, b_ub, _, _ = self._inequalities(rows)
        used = np.unique(A_ub.indices)
        res = linprog(np.zeros(len(used)), A_ub=A_ub[:, used], b_ub=b_ub, bounds=(None, None), method="highs")
        if res.status not in (0, 2):
            raise RuntimeError(f"feasibility LP failed: {res.message}")
        return res.status == 0

    def certificate(self) -> np.ndarray | None:
        """Rows carrying the elastic LP's non-zero duals, or None when every row can hold (to 1e-9)."""
        rows = np.arange(self.A.shape[0])
        A_ub, b_ub, hi, lo = self._inequalities(rows)
        k, n = A_ub.shape[0], self.A.shape[1]
        elastic = sp.hstack([A_ub, -sp.identity(k, format="csr")]).tocsr()
        bounds = np.r_[np.full((n, 2), [-np.inf, np.inf]), np.full((k, 2), [0.0, np.inf])]
        res = linprog(np.r_[np.zeros(n), np.ones(k)], A_ub=elastic, b_ub=b_ub, bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"elastic LP failed: {res.message}")
        if res.fun <= 1e-9:
            return None
        support = np.abs(res.ineqlin.marginals) > _DUAL_TOL
        return np.unique(np.r_[hi, lo][support])


def conflicting_rows(polytope: Polytope) -> list[str] | None:
    """Names of a minimal set of rows that cannot all hold together; None when the polytope is feasible."""
    system = _System(polytope)
    if system.feasible(np.arange(len(polytope.names))):
        return None
    support = system.certificate()
    if support is None:  # infeasible by less than the LP tolerance: as good as feasible
        return None
    if system.feasible(support):  # a numerically weak certificate: filter everything instead
        support = np.arange(len(polytope.names))
    rank = {f: i for i, f in enumerate(DELETION_ORDER)}
    family = {int(r): row_family(polytope.names[r]) for r in support}
    keep = sorted((int(r) for r in support), key=lambda r: (rank.get(family[r], len(rank)), r))
    for f in sorted(set(family.values()), key=lambda f: rank.get(f, len(rank))):
        trial = [r for r in keep if family[r] != f]
        if trial and not system.feasible(np.array(trial)):
            keep = trial
    for r in list(keep):
        trial = [x for x in keep if x != r]
        if trial and not system.feasible(np.array(trial)):
            keep = trial
    return [polytope.names[r] for r in sorted(keep)]


def _bound(lower: float, upper: float) -> str:
    if lower == upper:
        return f"= {lower:g}"
    if np.isfinite(lower) and np.isfinite(upper):
        return f"in [{lower:g}, {upper:g}]"
    return f"≥ {lower:g}" if np.isfinite(lower) else f"≤ {upper:g}"


def describe_row(name: str, lower: float, upper: float) -> str:
    """A row in words: `pin mara.felt.anger ≥ 0.8 at beat 5`, `mara.range.felt.anger.max = 0.6 at beat 5`."""
    stem, _, beats = name.rpartition("@")
    when = f"between beats {beats.replace('-', ' and ')}" if "-" in beats else f"at beat {beats}"
    family = row_family(name)
    if family == "pin":
        text = stem.removeprefix("pin:").replace(">=", " ≥ ").replace("<=", " ≤ ").replace("=", " = ")
        return f"pin {text} {when}"
    if family == "event":
        event, character, head = stem.removeprefix("event:").split(".", 2)
        head, _, bound = head.partition(">=")
        return f"event '{event}' raising {character}'s {head.replace('-', ' ')} to ≥ {bound} {when}"
    if family == "box":
        return f"{stem.removeprefix('box:')} {_bound(lower, upper)} (its natural range) {when}"
    if family == "range":
        return f"{stem} = {upper if np.isfinite(upper) else lower:g} {when}"
    if family == "volatility":
        return f"{stem} (a change of at most {upper:g}) {when}"
    if family in ("display", "culture"):
        owner, _, rule = stem.partition(".display.")
        emotion, audience, *part = rule.split(".")
        culture, _, character = owner.removeprefix("culture:").rpartition(".")
        whose = f"{character}'s display rule" if family == "display" else f"the {culture} display rule for {character}"
        mask = {"hide": " (the masked emotion kept off the face)", "show": " (the emotion shown instead)"}
        return f"{whose} on {emotion} {_AUDIENCE[audience]}{mask.get(part[0], '') if part else ''} {when}"
    return f"{stem} {_bound(lower, upper)} {when}"


def _place(source: str | None) -> tuple[str, int] | None:
    if not source:
        return None
    path, _, line = source.rpartition(":")
    return path, int(line)


def explain_infeasible(cast: Cast, situation: Situation, previous: Mapping[str, float] | None = None,
                       polytope: Polytope | None = None) -> list[Problem]:
    """Problems (code "infeasible") at the file positions of the rules that conflict; [] when feasible.

    One Problem per conflicting row written in a file, each naming the others; when none of them
    comes from a file (box, continuity), one Problem at the situation. Pass the scene's `polytope`
    if it is already compiled (with the same `previous`).
    """
    if polytope is None:
        polytope = compile_constraints(cast, situation, previous)
    names = conflicting_rows(polytope)
    if names is None:
        return []
    index = {n: i for i, n in enumerate(polytope.names)}
    rows = []
    for n in names:
        i = index[n]
        place = _place(polytope.sources[i])
        text = describe_row(n, float(polytope.lower[i]), float(polytope.upper[i]))
        rows.append((text, place, text + (f" ({Path(place[0]).name}:{place[1]})" if place else "")))
    problems = []
    for text, place, _ in rows:
        if place is None:
            continue
        others = [located for t, _, located in rows if t != text]
        message = f"{text} conflicts with {'; '.join(others)}" if others else f"{text} can never hold"
        problems.append(Problem(place[0], place[1], 1, "infeasible", message))
    if not problems:
        src = situation.source
        problems.append(Problem(src.path if src else situation.path or "<situation>", src.line if src else 1, 1,
                                "infeasible", "these cannot all hold: " + "; ".join(t for t, _, _ in rows)))
    return problems


def require_feasible(cast: Cast, situation: Situation, previous: Mapping[str, float] | None = None,
                     polytope: Polytope | None = None) -> None:
    """Raise StorydiffError if the scene has no solution: one line, the conflict named once.

    Each of `explain_infeasible`'s problems names the whole conflict from one file position (what
    `validate` lists, for editors); one says it all, preferably from the situation's own file.
    """
    problems = explain_infeasible(cast, situation, previous=previous, polytope=polytope)
    if problems:
        own = situation.source.path if situation.source else situation.path
        first = next((p for p in problems if p.path == own), problems[0])
        raise StorydiffError(f"{first.path}:{first.line}:{first.column}: {first.message}")
