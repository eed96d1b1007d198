"""The denoising loop that runs off the UI thread, and the messages it sends back.

The sampler is a generator, so the worker only pulls steps: it checks
`is_cancelled` between steps, never touches a widget, and hands each step to the
app as a message. Each run carries a `generation`; the app ignores steps from a
run it has since stopped, so a pause takes effect at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from textual.message import Message
from textual.worker import get_current_worker

from storydiff.sampling import Step


class StepReady(Message):
    """A sampler step finished."""

    def __init__(self, step: Step, generation: int):
        super().__init__()
        self.step = step
        self.generation = generation


class RunStopped(Message):
    """The worker stopped: the scene finished, one step was taken, or it was paused."""

    def __init__(self, generation: int, error: BaseException | None = None):
        super().__init__()
        self.generation = generation
        self.error = error


def drive(steps: Iterator[Step], post: Callable[[Message], object], generation: int, *, single: bool = False,
          pace: float = 0.0) -> None:
    """Pull steps until the run ends or the worker is cancelled; at most one step when `single`.

    `pace` is the least time between two steps (seconds), so a writer can watch a
    fast sampler; the wait itself stops as soon as the worker is cancelled.
    """
    worker = get_current_worker()
    error = None
    try:
        while not worker.is_cancelled:
            started = time.monotonic()
            step = next(steps, None)
            if step is None or worker.is_cancelled:
                break
            post(StepReady(step, generation))
            if single or step.last:
                break
            while not worker.is_cancelled and time.monotonic() - started < pace:
                time.sleep(min(0.02, pace))
    except Exception as e:  # noqa: BLE001 -- shown to the writer in a dialog; the draft stays on disk
        error = e
    post(RunStopped(generation, error))
