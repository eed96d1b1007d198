"""Training examples from real dramatic text: the shown affect of each speaker where they speak, nothing else.

For every window of every scene this gives `x [C, T, F]`, `mask [C, T, F]` and a
`SceneCondition`. Only the shown block of a character at a beat where they speak is
observed (their speeches in that beat, scored and averaged); felt affect, mood,
stance and silent beats are masked out of the loss. Text carries no traits,
cultures, descriptions or appraised events, so those masks are 0: the null
condition that classifier-free guidance also trains with (DESIGN §5).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch

from ..conditioning import EMBED_DIM, EVENT_FEATURES, SceneCondition
from ..layout import DEFAULT_MAX_CHARACTERS, SHOWN, n_features
from ..limits import LIMIT_FEATURES
from ..vocab import BIG_FIVE, HOFSTEDE, PAD, STANCE
from .beats import MAX_BEATS, SPEECHES_PER_BEAT, SceneWindow, windows
from .jsonl import read_jsonl
from .scene import TextScene

# Plays never trained on: the scorer's gold lines and the prior's evaluation come from these.
HELD_OUT_PLAYS: tuple[str, ...] = ("merchant", "othello", "rich_iii", "win_tale")

Example = tuple[torch.Tensor, torch.Tensor, SceneCondition]


def text_corpus(scenes: Iterable[TextScene], scorer: Callable[[list[str]], torch.Tensor] | None = None, *,
                speeches_per_beat: int = SPEECHES_PER_BEAT, max_beats: int = MAX_BEATS,
                max_characters: int = DEFAULT_MAX_CHARACTERS,
                stance_slots: int = DEFAULT_MAX_CHARACTERS) -> Iterator[Example]:
    """`(x, mask, condition)` per scene window; all speeches are scored in one batched call first.

    `scorer` maps texts to `[n, 22]` shown emotions (default: the MiniLM scorer). A window keeps
    the `max_characters` who speak most; the feature layout has the model's `stance_slots` either way.
    """
    if max_characters > stance_slots:
        raise ValueError(f"max_characters {max_characters} exceeds the layout's {stance_slots} stance slots")
    scenes = list(scenes)
    if scorer is None:
        from .scorer import score_shown as scorer
    texts = [speech.text for scene in scenes for speech in scene.speeches]
    shown = scorer(texts) if texts else torch.zeros(0, SHOWN.stop - SHOWN.start)
    offset = 0
    for scene in scenes:
        scores = shown[offset:offset + len(scene.speeches)]
        offset += len(scene.speeches)
        for window in windows(scene, speeches_per_beat, max_beats, max_characters):
            x, mask = _observations(window, scores, stance_slots)
            if mask.any():
                yield x, mask, _condition(len(window.cast), len(window.beats))


def _observations(window: SceneWindow, scores: torch.Tensor,
                  stance_slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (len(window.cast), len(window.beats), n_features(stance_slots))
    x, mask = torch.zeros(shape), torch.zeros(shape, dtype=torch.bool)
    slot = {name: c for c, name in enumerate(window.cast)}
    for t, beat in enumerate(window.beats):
        spoken: dict[int, list[torch.Tensor]] = {}
        for k in beat.speeches:
            for name in window.scene.speeches[k].characters:
                if name in slot:
                    spoken.setdefault(slot[name], []).append(scores[k])
        for c, rows in spoken.items():
            x[c, t, SHOWN] = torch.stack(rows).mean(0)
            mask[c, t, SHOWN] = True
    return x, mask


def _condition(characters: int, beats: int) -> SceneCondition:
    """Everything unknown: zeros with zero masks; only the cast and beats are real, and the source is text."""
    C, T = characters, beats
    return SceneCondition(
        traits=torch.zeros(C, len(BIG_FIVE)), culture=torch.zeros(C, len(HOFSTEDE)),
        description=torch.zeros(C, EMBED_DIM), relations=torch.zeros(C, C, len(STANCE)), mood=torch.zeros(C, len(PAD)),
        events=torch.zeros(C, T, len(EVENT_FEATURES)), limits=torch.zeros(C, T, LIMIT_FEATURES), publicness=torch.zeros(1),
        trait_mask=torch.zeros(C), culture_mask=torch.zeros(C), description_mask=torch.zeros(C),
        event_mask=torch.zeros(1), characters=torch.ones(C), beats=torch.ones(T), from_text=torch.ones(1),
    )


def stack_corpus(examples: Iterable[Example]) -> Example:
    """Batch examples into `[K, C, T, F]` tensors padded to the largest cast and scene (a corpus shard)."""
    examples = list(examples)
    if not examples:
        raise ValueError("no examples to stack")
    C = max(x.shape[0] for x, _, _ in examples)
    T = max(x.shape[1] for x, _, _ in examples)
    F = examples[0][0].shape[2]
    xs = torch.zeros(len(examples), C, T, F)
    masks = torch.zeros(len(examples), C, T, F, dtype=torch.bool)
    for k, (x, mask, _) in enumerate(examples):
        xs[k, :x.shape[0], :x.shape[1]] = x
        masks[k, :x.shape[0], :x.shape[1]] = mask
    return xs, masks, SceneCondition.stack([cond for _, _, cond in examples], C, T)


def shakespeare_split(path: Path | str, held_out: tuple[str, ...] = HELD_OUT_PLAYS) -> tuple[list[TextScene], list[TextScene]]:
    """(training scenes, held-out scenes) of a scenes JSON Lines file, split by whole plays."""
    scenes = read_jsonl(path)
    return [s for s in scenes if s.play not in held_out], [s for s in scenes if s.play in held_out]
