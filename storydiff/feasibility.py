"""Why a scene has no solution: a small set of named rows that cannot all hold, in plain words.

`conflicting_rows` finds an irreducible infeasible subsystem (IIS; Chinneck 2008, Feasibility and
Infeasibility in Optimization, ch. 6) with HiGHS through scipy.optimize.linprog:
1. an elastic phase-1 LP (every row may be violated at unit cost); its optimal duals are a Farkas
   certificate, non-zero on a few rows only, and those rows already conflict;
2. a deletion filter on that support: whole rule families first, then row by row, structure
   before rules and the writer's own pins and events last, so that what remains is minimal and
   names what a writer is most likely to change. These LPs have a handful of rows.

A conflict is reported once, as one Problem naming all its rows (`explain_infeasible`); a story's
scenes are also tested as one chain (`story_polytope`), since mood and stance carry across them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linprog

from .constraints import carried_state, compile_constraints, row_family
from .errors import InfeasibleError, Problem
from .models import Cast, Situation, Story
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


def _place(source: str | None) -> tuple[str, int, int] | None:
    """`path:line:column` (the path may hold colons) as (path, line, column)."""
    if not source:
        return None
    path, line, column = source.rsplit(":", 2)
    return path, int(line), int(column)


@dataclass(frozen=True)
class _Row:
    """One row of a conflict: its full name, in words, and where a file writes it (None: nowhere)."""

    name: str
    text: str
    place: tuple[str, int, int] | None  # path, line, column

    @property
    def given(self) -> bool:
        """A pin no file writes: the caller's (`engine.sample(situation, pins=[…])`, a TUI pin)."""
        return self.place is None and row_family(self.name) == "pin"

    def located(self) -> str:
        """The row in words with where it comes from, for naming it beside another."""
        if self.place:
            return f"{self.text} ({Path(self.place[0]).name}:{self.place[1]})"
        return f"{self.text} (your pin)" if self.given else self.text


def _conflict(polytope: Polytope) -> list[_Row] | None:
    """The rows of a minimal conflict, described; None when the polytope is feasible."""
    names = conflicting_rows(polytope)
    if names is None:
        return None
    index = {n: i for i, n in enumerate(polytope.names)}
    rows = []
    for n in names:
        i = index[n]
        text = describe_row(n.rpartition("/")[2], float(polytope.lower[i]), float(polytope.upper[i]))
        rows.append(_Row(n, text, _place(polytope.sources[i])))
    return _natural_ranges_together(rows, polytope, index)


def _natural_ranges_together(rows: list[_Row], polytope: Polytope, index: dict[str, int]) -> list[_Row]:
    """One row in words for a character's natural ranges on one layer at one beat, in place of one each:
    a mood conflict takes in the range of every emotion that pulls the mood, ~20 of them."""
    def group(r: _Row) -> tuple | None:
        if row_family(r.name) != "box":
            return None
        prefix, _, rest = r.name.rpartition("/")
        var, _, beat = rest.removeprefix("box:").rpartition("@")
        character, layer, _ = var.split(".", 2)
        i = index[r.name]
        return prefix, character, layer, beat, float(polytope.lower[i]), float(polytope.upper[i])

    items: dict[tuple, list[str]] = {}
    for r in rows:
        if (key := group(r)) is not None:
            items.setdefault(key, []).append(r.name.rpartition("@")[0].split(".", 2)[2])
    out, said = [], set()
    for r in rows:
        key = group(r)
        if key is None or len(items[key]) == 1:
            out.append(r)
        elif key not in said:
            said.add(key)
            _, character, layer, beat, lower, upper = key
            out.append(_Row(r.name, f"{character}.{layer} {', '.join(items[key])} each {_bound(lower, upper)} "
                                    f"(their natural ranges) at beat {beat}", None))
    return out


def _sentence(lead: _Row, rows: list[_Row]) -> str:
    """`lead` conflicts with the others; `lead` says where it comes from unless a position already does."""
    head = lead.text if lead.place else lead.located()
    others = [r.located() for r in rows if r is not lead]
    return f"{head} conflicts with {'; '.join(others)}" if others else f"{head} can never hold"


def _problem(situation: Situation, rows: list[_Row]) -> Problem:
    """The conflict as one Problem, at the row a writer most likely changes: one in the situation's
    own file (a pin, an event), else the first row any file writes, else the situation itself."""
    own = situation.source.path if situation.source else situation.path
    located = [r for r in rows if r.place]
    lead = next((r for r in located if r.place[0] == own), located[0] if located else None)
    if lead is None:
        src = situation.source
        return Problem(src.path if src else situation.path or "<situation>", src.line if src else 1,
                       src.column if src else 1, "infeasible", "these cannot all hold: " + "; ".join(r.located() for r in rows))
    return Problem(*lead.place, "infeasible", _sentence(lead, rows))


def explain_infeasible(cast: Cast, situation: Situation, previous: Mapping[str, float] | None = None,
                       polytope: Polytope | None = None) -> list[Problem]:
    """The conflict as one Problem (code "infeasible") naming every row in it; [] when feasible.

    One conflict is one problem however many beats or files its rows span, so that `validate`
    counts problems, not rows. Pass the scene's `polytope` if it is already compiled (with the
    same `previous`).
    """
    rows = _conflict(polytope if polytope is not None else compile_constraints(cast, situation, previous))
    return [] if rows is None else [_problem(situation, rows)]


def require_feasible(cast: Cast, situation: Situation, previous: Mapping[str, float] | None = None,
                     polytope: Polytope | None = None) -> None:
    """Raise InfeasibleError if the scene has no solution: one line, the conflict named once.

    A conflict that involves a pin no file writes is the caller's to fix: it is told without a
    file position, led by that pin, so that no writer's file is blamed for it.
    """
    rows = _conflict(polytope if polytope is not None else compile_constraints(cast, situation, previous))
    if rows is None:
        return
    given = next((r for r in rows if r.given), None)
    if given is not None:
        raise InfeasibleError(_sentence(given, rows))
    problem = _problem(situation, rows)
    raise InfeasibleError(f"{problem.path}:{problem.line}:{problem.column}: {problem.message}")


def story_polytope(cast: Cast, story: Story) -> Polytope:
    """A story's scenes as one polytope, rows and columns prefixed `sceneK/` (K from 1), each scene's
    continuity rows linked to the previous scene's last beat, as `Engine.sample_story` carries it.

    A continuity row is affine in the carried value v: `row(y) ∈ [c·v − δ, c·v + δ]` (stance: c = 1,
    continuity.py; mood: c = 1 − k, ALMA's pull, mood.py, whose clip of v to [−1, 1] the previous
    scene's box rows make idle). Compiled with every v = 0, then = 1, the
    scene gives δ and c; with v the previous scene's last-beat column, `row(y) − c·v ∈ [−δ, δ]`
    is linear in both scenes, so every rule of every scene and the carry-over are tested together.
    """
    parts: list[Polytope] = []
    links: list[tuple[int, int, float]] = []  # (row, column, coefficient) in the stacked system
    rows = columns = 0
    for k, (part, situation) in enumerate(zip(story.scenes, story.situations)):
        zero = carried_state(parts[-1].columns, [0.0] * len(parts[-1].columns), part.carry) if k else {}
        polytope = compile_constraints(cast, situation, zero)
        if zero:
            slope = compile_constraints(cast, situation, dict.fromkeys(zero, 1.0)).upper - polytope.upper
            before = {c: columns - len(parts[-1].columns) + i for i, c in enumerate(parts[-1].columns)}
            last = story.situations[k - 1].beats
            for r, name in enumerate(polytope.names):
                if row_family(name) == "continuity":
                    var = name.removeprefix("continuity:").rpartition("@")[0]
                    links.append((rows + r, before[f"{var}@{last}"], -float(slope[r])))
        parts.append(polytope)
        rows, columns = rows + polytope.shape[0], columns + polytope.shape[1]
    stacked = Polytope.block_diag(parts, [f"scene{k}/" for k in range(1, len(parts) + 1)])
    A = stacked.A.to_sparse_coo().coalesce()
    extra = torch.tensor([[r for r, _, _ in links], [c for _, c, _ in links]], dtype=torch.int64).reshape(2, -1)
    A = torch.sparse_coo_tensor(torch.cat([A.indices(), extra], 1),
                                torch.cat([A.values(), torch.tensor([v for _, _, v in links], dtype=torch.float64)]),
                                A.shape, dtype=torch.float64).coalesce().to_sparse_csr()
    return replace(stacked, A=A)


def explain_story_infeasible(cast: Cast, story: Story) -> list[Problem]:
    """A story whose scenes can each be played but not one after another: one Problem (code
    "infeasible") at the story's `<scene>` reference where the chain breaks; [] when it holds.

    Check each scene alone first (`explain_infeasible`): a scene with no solution breaks any chain.
    """
    rows = _conflict(story_polytope(cast, story))
    if rows is None:
        return []
    scene = {r.name: int(r.name.partition("/")[0].removeprefix("scene")) for r in rows}
    last = max(scene.values())
    first = min(*scene.values(), last - 1)
    ids = [s.id for s in story.situations]
    texts = []
    for r in rows:
        k = scene[r.name]
        if row_family(r.name) == "continuity":
            var = r.name.partition(":")[2].rpartition("@")[0]
            texts.append(f"scene {k}: {var} at beat 1 carried over from scene {k - 1}'s beat "
                         f"{story.situations[k - 2].beats}")
        else:
            texts.append(f"scene {k}: {r.located()}")
    after = f"scene {first}" if first == last - 1 else f"scenes {first}–{last - 1}"
    message = f"scene {last} ({ids[last - 1]}) cannot follow {after} ({', '.join(ids[first - 1:last - 1])}): " \
              f"these cannot all hold: {'; '.join(texts)}"
    part = story.scenes[last - 1]
    src = part.source or story.source
    return [Problem(src.path if src else "<story>", src.line if src else 1, src.column if src else 1, "infeasible",
                    message)]


def require_story_feasible(cast: Cast, story: Story) -> None:
    """Raise InfeasibleError, one line, if a scene has no solution or the scenes cannot follow each other.

    Run before a story is sampled, so that a chain that breaks at its fifth scene is refused
    before four scenes are sampled in vain, with the error `validate` gives for it.
    """
    problems = explain_story_infeasible(cast, story)
    if not problems:
        return  # the chain holds each scene's own rows: one LP where every scene holds
    for situation in story.situations:  # a scene that has no solution alone is named as such
        require_feasible(cast, situation)
    problem = problems[0]
    raise InfeasibleError(f"{problem.path}:{problem.line}:{problem.column}: {problem.message}")
