"""Real dramatic text → training data for the prior: readers, beats, the zero-shot affect scorer, corpus building.

    scenes = read_text("draft.fountain")          # .fountain, .txt (NAME: line), .jsonl / .jsonl.gz
    shown = score_shown([s.text for s in scenes[0].speeches])   # [n, 22] in [0, 1]
    for x, mask, cond in text_corpus(scenes): ...  # only the speaker's shown block is observed

Scoring is English-only. The package needs no data folder: paths are arguments.
"""
from .beats import Beat, SceneWindow, split_beats, windows
from .corpus import HELD_OUT_PLAYS, shakespeare_split, stack_corpus, text_corpus
from .fountain import read_fountain
from .jsonl import read_jsonl, write_jsonl
from .plain import read_plain
from .read import read_text
from .scene import Speech, TextScene
from .scorer import AffectScorer, score_pad, score_shown

__all__ = [
    "HELD_OUT_PLAYS",
    "AffectScorer",
    "Beat",
    "SceneWindow",
    "Speech",
    "TextScene",
    "read_fountain",
    "read_jsonl",
    "read_plain",
    "read_text",
    "score_pad",
    "score_shown",
    "shakespeare_split",
    "split_beats",
    "stack_corpus",
    "text_corpus",
    "windows",
    "write_jsonl",
]
