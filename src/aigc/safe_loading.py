"""`aigc.load`: a model to generate with, under the same safety policy as the CLI and the studio.

`aigc.loading.load` reads a checkpoint and knows nothing of safety (the layers below may not import it); this
attaches `aigc.safety.default_policy()` — moderation of prompts, output checks, watermarks and, when a signing
folder is configured, content credentials, all as set in the environment (AIGC_WATERMARK=off, ...) — so a
Python user's `generate` makes what `aigc generate` makes. `safety=False` is the research switch (scoring, speed
measurements): no policy at all. Internal callers (evaluation, optimisation, the studio, the CLI) use
`aigc.loading.load` and pass the policy they mean explicitly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aigc.loading import LoadedModel
from aigc.loading import load as load_checkpoint
from aigc.safety import default_policy


def load(path: str | Path, *, device: str = "cpu", weights: str = "auto", safety: bool = True) -> LoadedModel:
    """A run folder, checkpoint or zoo name, ready to generate; `generate`/`stream` apply the default safety
    policy unless called with another (`policy=`) or loaded with `safety=False`.

    >>> model = aigc.load("dcgan-mnist")
    >>> model.generate(aigc.ImageRequest(count=16, seed=0)).save_grid("digits.png")
    """
    loaded = load_checkpoint(path, device=device, weights=weights)
    return dataclasses.replace(loaded, policy=default_policy()) if safety else loaded
