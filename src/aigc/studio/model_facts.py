"""What a served model's own config says that its request class cannot: the values a request's "None:
the model's default" fields really take, and whether the model needs a prompt.

    form_defaults(entry) -> {"sampler": "ddim", "sample_steps": 50, "guidance": 3.0}
    needs_prompt(entry)  -> True for a text-to-image model

Read from the checkpoint's sidecar (no weights), once per checkpoint. A request field that defaults to
None takes the config field of the same name (the families name them alike: `sampler`, `sample_steps`,
`guidance`), so the page's form can show 3 and 50 instead of an empty box.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def _model_config(checkpoint: str) -> Any:
    from pathlib import Path

    from aigc import checkpoint as ckpt
    from aigc.config import RunConfig

    return RunConfig.from_dict(ckpt.read_sidecar(Path(checkpoint))["config"]).model


def form_defaults(entry) -> dict[str, Any]:
    """Request fields whose default is None, with the value the model uses for them instead."""
    if not entry.checkpoint:  # a built-in method (Gatys): its request's defaults are all there is
        return {}
    config = _model_config(entry.checkpoint)
    return {
        name: getattr(config, name)
        for name, field in entry.request_class.model_fields.items()
        if field.default is None and name in type(config).model_fields and getattr(config, name) is not None
    }


def needs_prompt(entry) -> bool:
    """A text-conditioned model draws from a prompt (or, trained on captioned classes, from labels that
    stand for captions): a job with neither would silently draw class 0 or fail while running."""
    if not entry.checkpoint:
        return False
    config = _model_config(entry.checkpoint)
    kind = getattr(config, "conditioning", None), getattr(config, "condition_source", None)
    conditional = getattr(config, "conditional", True)
    return "prompt" in entry.request_class.model_fields and conditional and "text" in kind
