"""A one-line progress bar on stderr for `storydiff sample`: steps done of the total, scene by scene.

The engine calls it after every sampler step (`Engine.sample(progress=…)`); it writes only to the
stream it is given, so stdout and `-o` output stay clean.
"""
from __future__ import annotations

from typing import TextIO

from .sampling import Step


class SampleProgress:
    """`scene 2/5 [##########....................] 4/12 steps`, redrawn in place with a carriage return.

    `passes` is how many sampler runs follow (a story runs one per scene; a situation's n scenes are
    one batched run); `steps` is each run's sampler steps.
    """

    def __init__(self, stream: TextIO, passes: int, steps: int, width: int = 30):
        self.stream, self.passes, self.steps, self.width = stream, passes, steps, width
        self.current = 1
        self.drawn = False

    def __call__(self, step: Step) -> None:
        done = step.index + 1
        filled = self.width * done // self.steps
        label = f"scene {self.current}/{self.passes} " if self.passes > 1 else ""
        self.stream.write(f"\r{label}[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.steps} steps")
        self.stream.flush()
        self.drawn = True
        if step.last:
            self.current += 1

    def close(self) -> None:
        """End the bar's line, so whatever is printed next starts on its own line."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
