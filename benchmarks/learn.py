"""`storydiff learn` on a 120-page screenplay: how long a writer waits on a CPU (issue target: < 10 min, 2 cores).

Usage: python benchmarks/learn.py [--play lear] [--pages 120] [--steps 250]

The screenplay is a Shakespeare play from `../shared/data/shakespeare` written out as
Fountain (scene headings, character cues, dialogue) until it fills the page count, pages
estimated the way screenplay software does: dialogue wrapped at 35 characters, action at
60, 55 lines a page. The run is the real command with its defaults (parse, MiniLM
scoring of every speech, fine-tuning the bundled checkpoint), timed phase by phase.
"""
from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

import torch

from storydiff.cli import main as storydiff
from storydiff.text import read_text, text_corpus
from storydiff.text.jsonl import read_jsonl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "shakespeare" / "scenes.jsonl.gz"
LINES_PER_PAGE = 55
TARGET_SECONDS = 600


def fountain(play: str, pages: int) -> tuple[str, float, int]:
    """(Fountain text, its page estimate, speeches) of the play's scenes up to `pages` pages."""
    scenes = [s for s in read_jsonl(SHARED) if s.play == play]
    if not scenes:
        raise SystemExit(f"no play {play!r} in {SHARED}")
    out, lines, speeches = [], 0, 0
    while lines < pages * LINES_PER_PAGE:  # a short play is read again, as a longer script would be
        for scene in scenes:
            out.append(f"INT. {scene.scene.upper()} - DAY\n")
            lines += 2
            for speech in scene.speeches:
                cue = " & ".join(speech.speakers).upper()
                wrapped = textwrap.wrap(speech.text, 35) or [""]
                out.append(f"{cue}\n" + "\n".join(wrapped) + "\n")
                lines += 2 + len(wrapped)
                speeches += 1
                if lines >= pages * LINES_PER_PAGE:
                    return "\n".join(out), lines / LINES_PER_PAGE, speeches
    return "\n".join(out), lines / LINES_PER_PAGE, speeches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--play", default="lear")
    parser.add_argument("--pages", type=int, default=120)
    parser.add_argument("--steps", type=int, default=250, help="fine-tuning steps (the command's default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"{args.play}.fountain"
        text, pages, speeches = fountain(args.play, args.pages)
        script.write_text(text, encoding="utf-8")
        print(f"# storydiff learn on {pages:.0f} pages ({speeches} speeches of {args.play}), "
              f"CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}")

        start = time.perf_counter()
        scenes = read_text(script)
        parsed = time.perf_counter()
        examples = list(text_corpus(scenes))
        scored = time.perf_counter()
        print(f"parse {parsed - start:.1f} s · MiniLM scoring {scored - parsed:.1f} s "
              f"({len(scenes)} scenes, {len(examples)} training windows)")

        start = time.perf_counter()
        code = storydiff(["learn", str(script), "--out", str(Path(tmp) / "mine.safetensors"),
                          "--steps", str(args.steps), "--device", "cpu"])
        total = time.perf_counter() - start
        if code:
            raise SystemExit(f"storydiff learn exited {code}")
        verdict = "met" if total < TARGET_SECONDS else "missed"
        print(f"whole command: {total:.0f} s ({total / 60:.1f} min); target < {TARGET_SECONDS / 60:.0f} min "
              f"({verdict}, {TARGET_SECONDS / total:.1f}× under)")


if __name__ == "__main__":
    main()
