"""aigc: train, generate with, measure, shrink and serve generative models for images, text and audio.

    import aigc
    result = aigc.train("dcgan-mnist", overrides=["train.max_minutes=2"])
    model = aigc.load(result.run_dir)
    model.generate(aigc.ImageRequest(count=16, seed=0)).save_grid("digits.png")

Attributes are imported on first use, so `import aigc` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "train": "aigc.api",
    "load": "aigc.safe_loading",  # with the default safety policy, as the CLI and studio generate
    "LoadedModel": "aigc.loading",
    "GenerationRequest": "aigc.generation.requests",
    "AudioClip": "aigc.generation.outputs",
    "load_config": "aigc.config",
    "RunConfig": "aigc.config",
    "ImageRequest": "aigc.generation.requests",
    "ImageBatch": "aigc.generation.outputs",
    "TextRequest": "aigc.generation.text",
    "TextSample": "aigc.generation.text",
    "list_models": "aigc.registry",
    "list_datasets": "aigc.registry",
    "list_presets": "aigc.config",
    "AigcError": "aigc.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'aigc' has no attribute {name!r}")
