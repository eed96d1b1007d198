"""Real-text corpora on disk (`storydiff corpus --text FILE…`): the shards the trainer reads beside simulated ones.

Every speech is scored once with MiniLM and every scene cut into windows (`text_corpus`); the
windows go to one shard, `text.safetensors`, with a `manifest.json` like a simulated corpus's.
Plays named in `hold_out` go to `held-out/` inside the folder instead — whole plays, never single
scenes, so evaluation never sees a play the prior trained on — where `storydiff train DIR` does not
look (it reads the folder's own shards only).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .. import __version__
from ..corpus import CORPUS_VERSION, manifest_layout, write_manifest
from ..errors import StorydiffError
from ..layout import DEFAULT_MAX_CHARACTERS
from ..shards import save_shard
from .beats import MAX_BEATS, SPEECHES_PER_BEAT
from .corpus import stack_corpus, text_corpus
from .read import read_text
from .scene import TextScene

SHARD = "text.safetensors"
HELD_OUT = "held-out"


def write_text_corpus(files: Sequence[Path | str], out_dir: Path | str, hold_out: Sequence[str] = (),
                      max_beats: int = MAX_BEATS, max_characters: int = DEFAULT_MAX_CHARACTERS,
                      scorer: Callable[[list[str]], torch.Tensor] | None = None,
                      progress: Callable[[str], None] = lambda _: None) -> Path:
    """Score and window the scenes of `files` into `out_dir` (and `out_dir/held-out/` for the plays
    named in `hold_out`); returns the training manifest's path. `scorer` defaults to MiniLM;
    `progress` hears when the files are read and the slow scoring begins."""
    scenes = [scene for path in files for scene in read_text(path)]
    plays = sorted({s.play for s in scenes})
    unknown = [p for p in hold_out if p not in plays]
    if unknown:
        raise StorydiffError(f"--hold-out {unknown[0]}: no such play in {', '.join(map(str, files))}; "
                             f"its plays are {', '.join(plays) or 'none'}")
    held = [s for s in scenes if s.play in hold_out]
    train = [s for s in scenes if s.play not in hold_out]
    if not train:
        raise StorydiffError("no scenes with speakers left to train on in the given files")
    progress(f"scoring {sum(len(s.speeches) for s in scenes)} speeches in {len(scenes)} scenes of "
             f"{len(plays)} play(s) with MiniLM…")
    out = Path(out_dir)
    windowing = {"beats": max_beats, "characters": max_characters, "speeches_per_beat": SPEECHES_PER_BEAT}
    manifest = _write(out, train, files, windowing, scorer)
    if held:
        _write(out / HELD_OUT, held, files, windowing, scorer)
    return manifest


def _write(folder: Path, scenes: list[TextScene], files: Sequence[Path | str], windowing: dict,
           scorer: Callable[[list[str]], torch.Tensor] | None) -> Path:
    """One folder's shard and manifest; returns the manifest's path."""
    examples = list(text_corpus(scenes, scorer, max_beats=windowing["beats"], max_characters=windowing["characters"]))
    if not examples:
        raise StorydiffError(f"{', '.join(map(str, files))}: no speech of a named speaker to learn from"
                             + (" among the held-out plays" if folder.name == HELD_OUT else ""))
    folder.mkdir(parents=True, exist_ok=True)
    x, mask, cond = stack_corpus(examples)
    save_shard(folder / SHARD, x, mask, cond)
    return write_manifest(folder, {
        "version": CORPUS_VERSION, "storydiff": __version__, "kind": "text",
        "files": [str(f) for f in files], "plays": sorted({s.play for s in scenes}), "scenes": len(scenes),
        "speeches": sum(len(s.speeches) for s in scenes), "n": len(x),
        "shards": [{"file": SHARD, "count": len(x)}],
        "layout": manifest_layout(x.shape[1], x.shape[2]),
        "windows": windowing, "scorer": "all-MiniLM-L6-v2 zero-shot against storydiff.text.prototypes",
    })


def cmd_text_corpus(args: argparse.Namespace) -> int:
    """`storydiff corpus --text FILE…`: progress to stderr, the manifest's path to stdout."""
    hold_out = [p.strip() for p in (args.hold_out or "").split(",") if p.strip()]
    path = write_text_corpus(args.text, args.out, hold_out, max_beats=args.beats, max_characters=args.characters,
                             progress=lambda line: print(line, file=sys.stderr))
    manifest = json.loads(path.read_text())
    print(f"{manifest['n']} windows of {manifest['scenes']} scenes", file=sys.stderr)
    print(path)
    return 0
