"""What the schemas cannot say: references across files, duplicates and contradictions.

Every check returns Problems instead of raising, so a writer sees all the
mistakes in a file at once. Each problem points at the element (or attribute)
to change and says how; docs/formats.md lists the checks for writers.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from .affect import NEUTRALISE_EPSILON, display_value
from .errors import Problem
from .models import (
    Cast,
    Character,
    Culture,
    DisplayRule,
    EmotionRange,
    Event,
    Located,
    Pin,
    Situation,
)
from .vocab import OCC_EMOTIONS

EPSILON = 1e-9


def problem_at(model: Located, code: str, message: str, attribute: str | None = None) -> Problem:
    """A problem at a model's element, or at one of its attributes when that was recorded."""
    if model.source is None:
        return Problem(path="<memory>", line=1, column=1, code=code, message=message)
    source = model.source.at(attribute)
    return Problem(path=source.path, line=source.line, column=source.column, code=code, message=message)


def where(model: Located) -> str:
    return f"{model.source.path}:{model.source.line}" if model.source else "elsewhere"


def _some(names: Iterable[str], limit: int = 8) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "") if names else "none"


def duplicates(models: Iterable[Located], key: Callable[[Located], Hashable], what: str, attribute: str, code: str = "duplicate") -> list[Problem]:
    """Each model whose key an earlier one already has, pointing back at the first."""
    first: dict = {}
    problems = []
    for model in models:
        k = key(model)
        if k in first:
            problems.append(problem_at(model, code, f"{what} '{k}' is already given at {where(first[k])}; "
                                                    "keep one", attribute))
        else:
            first[k] = model
    return problems


# ---------------------------------------------------------------- display rules

_VALUE_MEANS = {
    "max": "c: shown ≤ c",
    "de-intensify": "k below 1: shown ≤ k·felt",
    "mask": "k: the other emotion is shown at ≥ k·felt of this one",
    "simulate": "c: shown ≥ c",
}


def _check_rule(rule: DisplayRule) -> list[Problem]:
    said = f"<display-rule kind=\"{rule.kind}\">"
    problems = []
    if rule.kind in _VALUE_MEANS and rule.value is None:
        problems.append(problem_at(rule, "missing-value", f"{said} needs value=\"…\" ({_VALUE_MEANS[rule.kind]})"))
    if rule.kind == "intensify" and rule.value is not None:
        problems.append(problem_at(rule, "unused-value", f"{said} takes no value (shown ≥ felt); remove it", "value"))
    if rule.kind == "de-intensify" and rule.value is not None and rule.value >= 1:
        problems.append(problem_at(rule, "bad-value", f"{said} needs value below 1 (shown ≤ k·felt)", "value"))
    if rule.kind == "mask" and rule.show is None:
        problems.append(problem_at(rule, "missing-show", f"{said} needs show=\"…\", the emotion shown instead"))
    if rule.kind == "mask" and rule.show == rule.emotion:
        problems.append(problem_at(rule, "bad-value", f"{said} must show another emotion than {rule.emotion}", "show"))
    if rule.kind != "mask" and rule.show is not None:
        problems.append(problem_at(rule, "unused-show", f"{said}: show= applies to kind=\"mask\" only; remove it",
                                   "show"))
    return problems


def check_rules(rules: list[DisplayRule]) -> list[Problem]:
    """Each rule has the value and show its kind needs, and no rule is given twice."""
    problems = [p for rule in rules for p in _check_rule(rule)]
    return problems + duplicates(rules, lambda r: f"{r.emotion} {r.audience} {r.kind}", "display rule", "kind")


@dataclass(frozen=True)
class _Bound:
    value: float
    causes: tuple[Located, ...]


@dataclass(frozen=True)
class Conflict:
    """Two bounds on one shown emotion before one audience that no value satisfies."""

    emotion: str
    audience: str
    low: _Bound
    high: _Bound

    @property
    def causes(self) -> tuple[Located, ...]:
        return self.low.causes + self.high.causes


def _felt(ranges: list[EmotionRange]) -> dict[str, tuple[float, float, tuple[Located, ...]]]:
    felt = {e: (0.0, 1.0, ()) for e in OCC_EMOTIONS}
    for r in ranges:
        felt[r.emotion] = (r.min, r.upper, (r,))
    return felt


def display_conflicts(rules: list[DisplayRule], ranges: list[EmotionRange]) -> list[Conflict]:
    """Bounds on a shown emotion that contradict each other for every felt value in range.

    Each rule is one-sided and linear in felt and shown (DESIGN §3), so over the
    felt range it gives a lower or an upper bound on the shown value: `max` c and
    `neutralise` ε cap it, `de-intensify` caps it at k·max felt, `intensify`
    floors it at min felt, `simulate` at c; `mask` caps the hidden emotion at ε
    and floors the shown one at k·min felt of the hidden. Values missing from a
    file are the compiler's (`affect.display_value`). An empty interval is a
    contradiction no situation can fix.
    """
    felt = _felt(ranges)
    lows: dict[tuple[str, str], list[_Bound]] = defaultdict(list)
    highs: dict[tuple[str, str], list[_Bound]] = defaultdict(list)
    for rule in rules:
        lo, hi, felt_causes = felt[rule.emotion]
        key, value = (rule.emotion, rule.audience), display_value(rule)
        if rule.kind in ("max", "neutralise"):
            highs[key].append(_Bound(value, (rule,)))
        elif rule.kind == "de-intensify":
            highs[key].append(_Bound(value * hi, (rule, *felt_causes)))
        elif rule.kind == "intensify":
            lows[key].append(_Bound(lo, (rule, *felt_causes)))
        elif rule.kind == "simulate":
            lows[key].append(_Bound(value, (rule,)))
        else:  # mask
            highs[key].append(_Bound(NEUTRALISE_EPSILON, (rule,)))
            if rule.show:
                lows[(rule.show, rule.audience)].append(_Bound(value * lo, (rule, *felt_causes)))
    conflicts = []
    for key, bounds in lows.items():
        low = max(bounds, key=lambda b: b.value)
        high = min(highs.get(key, []), key=lambda b: b.value, default=None)
        if high is not None and low.value > high.value + EPSILON:
            conflicts.append(Conflict(key[0], key[1], low, high))
    return conflicts


def effective_rules(ch: Character, culture: Culture | None) -> list[DisplayRule]:
    """The culture's rules the character does not rewrite, then its own (as the constraint compiler applies them)."""
    own = {(r.emotion, r.audience) for r in ch.display_rules}
    inherited = [r for r in (culture.display_rules if culture else []) if (r.emotion, r.audience) not in own]
    return inherited + ch.display_rules


def _describe(causes: tuple[Located, ...]) -> str:
    parts = []
    for c in causes:
        label = f"<display-rule kind=\"{c.kind}\">" if isinstance(c, DisplayRule) else "<range>"
        parts.append(f"{label} at {where(c)}")
    return " and ".join(parts)


def conflict_problem(conflict: Conflict, at: Located, who: str) -> Problem:
    return problem_at(at, "rule-conflict", (
        f"{who} cannot show {conflict.emotion} before a {conflict.audience} audience: it must be at least "
        f"{conflict.low.value:.3g} ({_describe(conflict.low.causes)}) and at most {conflict.high.value:.3g} "
        f"({_describe(conflict.high.causes)}); relax one of them"))


# ---------------------------------------------------------------- characters and cultures

def _check_range(r: EmotionRange) -> list[Problem]:
    if r.min > r.upper + EPSILON:
        upper = "never=\"true\" (max 0)" if r.never else f"max {r.max:g}"
        return [problem_at(r, "min-above-max", f"<range emotion=\"{r.emotion}\">: min {r.min:g} is above {upper}; "
                                               "lower min or raise max", "min")]
    return []


def check_character(ch: Character) -> list[Problem]:
    """One character file on its own: ranges, duplicates, self-relations, display-rule fields."""
    problems = [p for r in ch.ranges for p in _check_range(r)]
    problems += duplicates(ch.ranges, lambda r: r.emotion, "a range for", "emotion")
    problems += duplicates(ch.volatility, lambda v: v.emotion or "all emotions", "a volatility for", "emotion")
    problems += duplicates(ch.relations, lambda r: r.to, "a relation to", "to")
    problems += duplicates(ch.behaviours, lambda b: b.id, "behaviour id", "id", code="duplicate-id")
    problems += [problem_at(r, "self-relation", f"{ch.id} has a relation to itself; relations name another character",
                            "to") for r in ch.relations if r.to == ch.id]
    return problems + check_rules(ch.display_rules)


def check_culture(culture: Culture) -> list[Problem]:
    """One culture file on its own: display-rule fields and rules that contradict each other."""
    problems = check_rules(culture.display_rules)
    return problems + [conflict_problem(c, c.low.causes[0], f"culture {culture.id}")
                       for c in display_conflicts(culture.display_rules, [])]


def _owned(ch: Character, causes: tuple[Located, ...]) -> Located | None:
    mine = [*ch.ranges, *ch.display_rules]
    return next((c for c in causes if any(c is m for m in mine)), None)


def _check_membership(ch: Character, cast: Cast, closed: bool) -> list[Problem]:
    problems = []
    if ch.culture and ch.culture not in cast.cultures:
        problems.append(problem_at(ch, "unknown-culture", (
            f"culture '{ch.culture}' is not defined (known: {_some(cast.cultures)}); "
            f"add a {ch.culture}.culture.xml beside the characters or fix the name"), "culture"))
    if closed:
        problems += [problem_at(r, "unknown-character", (
            f"relation to '{r.to}', but no character has that id (known: {_some(cast.characters)})"), "to")
            for r in ch.relations if r.to not in cast.characters and r.to != ch.id]
    return problems


def check_cast(cast: Cast, closed: bool = True) -> list[Problem]:
    """Cross-file checks of a library: culture references, relation targets, rules vs ranges.

    `closed` says the cast is a whole library, so a relation to an id outside it is
    a mistake; a single character file is checked with `closed=False`.
    A contradiction is reported at the character when one of its own ranges or
    rules takes part; one between a culture's rules alone is the culture's.
    """
    problems = []
    for ch in cast.characters.values():
        problems += _check_membership(ch, cast, closed)
        culture = cast.cultures.get(ch.culture) if ch.culture else None
        for conflict in display_conflicts(effective_rules(ch, culture), ch.ranges):
            mine = _owned(ch, conflict.causes)
            if mine is not None:
                problems.append(conflict_problem(conflict, mine, ch.id))
    return problems


# ---------------------------------------------------------------- situations

class _Member(Located):
    """A `<member ref>` of a situation's cast, kept only to point at it."""

    ref: str


def _unknown_member(name: str, cast: Cast, model: Located, attribute: str) -> Problem:
    if name in cast:
        message = f"'{name}' is not in this situation's cast; add <member ref=\"{name}\"/> to <cast>"
    else:
        message = f"no character '{name}' (known: {_some(cast.characters)})"
    return problem_at(model, "unknown-character", message, attribute)


def _check_event(event: Event, situation: Situation, cast: Cast) -> list[Problem]:
    problems = []
    if event.beat > situation.beats:
        problems.append(problem_at(event, "beat-out-of-range", (
            f"event '{event.id}' is at beat {event.beat}, but the situation has beats 1-{situation.beats}"), "beat"))
    for attribute in ("agent", "target"):
        name = getattr(event, attribute)
        if name is not None and name not in situation.cast:
            problems.append(_unknown_member(name, cast, event, attribute))
    problems += [_unknown_member(a.character, cast, a, "character")
                 for a in event.appraisals if a.character not in situation.cast]
    return problems + duplicates(event.appraisals, lambda a: a.character, "an appraisal by", "character")


def _pin_bounds_problems(pin: Pin, layer: str) -> list[Problem]:
    given = {k: getattr(pin, k) for k in ("min", "max", "equal") if getattr(pin, k) is not None}
    if not given:
        return [problem_at(pin, "empty-pin", f"pin {pin.var} gives no bound; add min=, max= or equal=")]
    if "equal" in given and len(given) > 1:
        return [problem_at(pin, "conflicting-pin", f"pin {pin.var}: equal= cannot be combined with min= or max=",
                           "equal")]
    lo, hi = pin.bounds
    if lo > hi + EPSILON:
        return [problem_at(pin, "min-above-max", f"pin {pin.var}: min {lo:g} is above max {hi:g}", "min")]
    if layer in ("felt", "shown") and hi < -EPSILON:
        attribute = "equal" if "equal" in given else "max"
        return [problem_at(pin, "out-of-range", f"pin {pin.var}: {layer} values lie in [0, 1]", attribute)]
    return []


def _pin_range_problem(pin: Pin, ch: Character, emotion: str) -> list[Problem]:
    """A felt pin outside what the character can feel at all."""
    r = next((r for r in ch.ranges if r.emotion == emotion), None)
    if r is None:
        return []
    lo, hi = pin.bounds
    attribute = "equal" if pin.equal is not None else None
    if lo > r.upper + EPSILON:
        can = f"never feels {emotion}" if r.never else f"feels {emotion} at most {r.max:g}"
        return [problem_at(pin, "pin-outside-range", f"pin {pin.var} ≥ {lo:g} cannot hold: {ch.id} {can} "
                                                      f"({where(r)})", attribute or "min")]
    if hi < r.min - EPSILON:
        return [problem_at(pin, "pin-outside-range", f"pin {pin.var} ≤ {hi:g} cannot hold: {ch.id} feels "
                                                      f"{emotion} at least {r.min:g} ({where(r)})", attribute or "max")]
    return []


def _check_pin(pin: Pin, situation: Situation, cast: Cast) -> list[Problem]:
    from .layout import parse_variable  # layout imports torch; only situations with pins pay for it

    try:
        name = parse_variable(pin.var)
    except ValueError as e:
        return [problem_at(pin, "bad-variable", str(e), "var")]
    for who in (name.character, name.other):
        if who is not None and who not in situation.cast:
            return [_unknown_member(who, cast, pin, "var")]
    if name.other == name.character:
        return [problem_at(pin, "bad-variable", f"pin {pin.var}: stance names another character", "var")]
    if name.beat > situation.beats:
        return [problem_at(pin, "beat-out-of-range", (
            f"pin {pin.var} is at beat {name.beat}, but the situation has beats 1-{situation.beats}"), "var")]
    problems = _pin_bounds_problems(pin, name.layer)
    if not problems and name.layer == "felt" and name.character in cast:
        problems = _pin_range_problem(pin, cast[name.character], name.item)
    return problems


def _pin_pair_problems(pins: list[Pin]) -> list[Problem]:
    """Two pins on one variable whose bounds do not overlap."""
    problems = []
    by_var: dict[str, list[Pin]] = defaultdict(list)
    for pin in pins:
        by_var[pin.var.strip()].append(pin)
    for var, group in by_var.items():
        for i, pin in enumerate(group[1:], 1):
            lo = max(p.bounds[0] for p in group[:i + 1])
            hi = min(p.bounds[1] for p in group[:i + 1])
            if lo > hi + EPSILON:
                problems.append(problem_at(pin, "conflicting-pin", (
                    f"pins on {var} leave no value (≥ {lo:g} and ≤ {hi:g}); see {where(group[0])}")))
                break
    return problems


def check_situation(situation: Situation, cast: Cast) -> list[Problem]:
    """A situation against its cast: members, events, beats and pins."""
    sources = situation.cast_sources or [situation.source] * len(situation.cast)
    members = [_Member(ref=ref, source=source) for ref, source in zip(situation.cast, sources)]
    problems = [_unknown_member(m.ref, cast, m, "ref") for m in members if m.ref not in cast]
    problems += duplicates(members, lambda m: m.ref, "cast member", "ref")
    problems += [p for e in situation.events for p in _check_event(e, situation, cast)]
    problems += duplicates(situation.events, lambda e: e.id, "event id", "id", code="duplicate-id")
    pin_problems = [p for pin in situation.pins for p in _check_pin(pin, situation, cast)]
    if not pin_problems:
        pin_problems = _pin_pair_problems(situation.pins)
    return problems + pin_problems
