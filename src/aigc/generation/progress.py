"""Progress of a generation, reported from inside a family's sampling loop to whoever listens.

A family calls `report_progress(done, total)` (e.g. once per diffusion step); the generation pipeline sets
the listener for the duration of one call (a context variable, so threads and jobs never mix). With no
listener it costs one lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator

Progress = Callable[[int, int], None]  # (steps done, steps in all)

_listener: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("aigc_generation_progress", default=None)


def report_progress(done: int, total: int) -> None:
    listener = _listener.get()
    if listener is not None:
        listener(done, total)


@contextlib.contextmanager
def listening(progress: Progress | None) -> Iterator[None]:
    token = _listener.set(progress)
    try:
        yield
    finally:
        _listener.reset(token)
