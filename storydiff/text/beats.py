"""Cutting a scene into beats, and long scenes into windows the model can take.

A beat is a short exchange: up to `speeches_per_beat` consecutive speeches (three
by default, about one turn each for two people and a reply), closed early when
someone enters or leaves, since a change of who is present is a change of beat in
any acting text. A window holds at most `max_beats` beats (64, what the bundled
checkpoint takes) and `max_characters` characters: when more are on stage, the
ones who speak most in the window are kept.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..layout import DEFAULT_MAX_CHARACTERS
from .scene import TextScene, is_group

SPEECHES_PER_BEAT = 3
MAX_BEATS = 64


@dataclass(frozen=True)
class Beat:
    """Indices into `scene.speeches`, and everyone on stage during them."""

    speeches: tuple[int, ...]
    on_stage: frozenset[str]


@dataclass(frozen=True)
class SceneWindow:
    """Consecutive beats of one scene and the cast the model sees for them (first-appearance order)."""

    scene: TextScene
    beats: tuple[Beat, ...]
    cast: tuple[str, ...]


def split_beats(scene: TextScene, speeches_per_beat: int = SPEECHES_PER_BEAT) -> list[Beat]:
    """Beats in reading order; every speech belongs to exactly one beat."""
    if speeches_per_beat < 1:
        raise ValueError("speeches_per_beat must be at least 1")
    beats: list[Beat] = []
    current: list[int] = []
    for k, speech in enumerate(scene.speeches):
        if current and (len(current) == speeches_per_beat or speech.on_stage != scene.speeches[k - 1].on_stage):
            beats.append(_beat(scene, current))
            current = []
        current.append(k)
    if current:
        beats.append(_beat(scene, current))
    return beats


def _beat(scene: TextScene, indices: list[int]) -> Beat:
    on_stage = frozenset().union(*(scene.speeches[k].on_stage for k in indices))
    return Beat(tuple(indices), frozenset(n for n in on_stage if not is_group(n)))


def windows(scene: TextScene, speeches_per_beat: int = SPEECHES_PER_BEAT, max_beats: int = MAX_BEATS,
            max_characters: int = DEFAULT_MAX_CHARACTERS) -> list[SceneWindow]:
    """The scene's beats cut into windows of at most `max_beats`, each with its own cast."""
    beats = split_beats(scene, speeches_per_beat)
    return [_window(scene, tuple(beats[i:i + max_beats]), max_characters) for i in range(0, len(beats), max_beats)]


def _window(scene: TextScene, beats: tuple[Beat, ...], max_characters: int) -> SceneWindow:
    order: dict[str, None] = {}
    lines: Counter[str] = Counter()
    for beat in beats:
        for k in beat.speeches:
            for name in scene.speeches[k].characters:
                order.setdefault(name)
                lines[name] += 1
        for name in sorted(beat.on_stage):
            order.setdefault(name)
    cast = list(order)
    if len(cast) > max_characters:
        keep = set(sorted(cast, key=lambda n: (-lines[n], cast.index(n)))[:max_characters])
        cast = [n for n in cast if n in keep]
    return SceneWindow(scene, beats, tuple(cast))
