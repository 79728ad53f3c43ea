"""Progress of a generation, reported from inside a family's sampling loop to whoever listens.

A family calls `report_progress(done, total, preview)` (e.g. once per diffusion step); the generation
pipeline sets the listener for the duration of one call (a context variable, so threads and jobs never
mix). With no listener it costs one lookup. `preview`, when given, is a function returning what the work
looks like so far (uint8 NHWC images, e.g. a diffusion step's estimate of the final image): the listener
calls it only when it wants to show one, so previews cost nothing otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator

Preview = Callable[[], Any]  # () -> uint8 [N, H, W, C] numpy images of the work so far
Progress = Callable[..., None]  # (steps done, steps in all, preview: Preview | None = None)

_listener: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("aigc_generation_progress", default=None)


def report_progress(done: int, total: int, preview: Preview | None = None) -> None:
    listener = _listener.get()
    if listener is not None:
        listener(done, total, preview)


@contextlib.contextmanager
def listening(progress: Progress | None) -> Iterator[None]:
    token = _listener.set(progress)
    try:
        yield
    finally:
        _listener.reset(token)
