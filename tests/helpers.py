"""Small builders shared by the tests (tiny presets, tiny runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from aigc.config import load_config
from aigc.errors import ConfigError
from aigc.training.callbacks import Callback, default_callbacks
from aigc.training.loop import fit


def tiny(family: str, *overrides: str):
    return load_config(f"{family}-tiny", list(overrides))


def assert_overrides_are_validated(family, *, typo, listed, key, good):
    """A misspelled model key is refused with the valid keys listed, a value of the wrong type names its key,
    and a good value reaches the config."""
    with pytest.raises(ConfigError, match="unknown key") as error:
        tiny(family, f"model.{typo}=3")
    assert listed in str(error.value)  # the message lists the valid keys
    with pytest.raises(ConfigError, match=f"model.{key}"):
        tiny(family, f"model.{key}=zero")
    assert getattr(tiny(family, f"model.{key}={good}").model, key) == good


def train_tiny(family: str, run_dir: Path, *overrides: str, callbacks=()):
    """A tiny run with the default callbacks, then `callbacks`."""
    config = tiny(family, *overrides)
    return fit(config, run_dir, callbacks=[*default_callbacks(config, run_dir), *callbacks])


def tiny_run(tmp_path_factory, family: str, *overrides: str) -> Path:
    """The folder of a tiny run trained in a fresh temporary folder: what a module-scoped fixture shares."""
    run = tmp_path_factory.mktemp(family) / "run"
    train_tiny(family, run, *overrides)
    return run


class StopAt(Callback):
    """Stops training after `step` (as a signal or early stopping would)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            state.request_stop("test stop")


def weights(checkpoint: Path, stem: str = "model") -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / f"{stem}.safetensors"))


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"
