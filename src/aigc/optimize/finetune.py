"""--finetune STEPS: let a pruned network recover, through the one training loop (`aigc.training.loop.fit`).

The run's own config trains it (data, optimizer, batch), for STEPS steps, with the loop's default callbacks
and `KeepPruned` ahead of them, which sets the pruned weights back to zero after every optimizer step (before
the EMA reads them). A GAN generator is the exception: it learns to match the unpruned generator's images
from the same noise (`distill.OutputMatching`, distillation as in GAN Compression, Li et al. 2020,
https://arxiv.org/abs/2003.08936) instead of playing against the run's discriminator — adversarial
fine-tuning of the pruned dcgan-mnist generator against its trained discriminator diverged (real/fake
scores +13/-12 and generator loss 12 after 600 steps), and a zoo GAN may ship without its discriminator.

The loop writes its logs into OUT/finetune/; its checkpoints are removed afterwards, since they lack the
transforms that the optimised checkpoint records.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import Tensor, nn

from aigc.config import RunConfig, apply_overrides
from aigc.optimize.distill import OutputMatching, can_match_outputs
from aigc.optimize.prune import apply_masks
from aigc.training.callbacks import EMA, Callback, default_callbacks
from aigc.training.loop import fit


class KeepPruned(Callback):
    """Pruned weights stay zero: the masks are applied again after each optimizer step."""

    def __init__(self, masks: dict[str, Tensor], prefix: str = ""):
        self.masks = {f"{prefix}{name}": mask for name, mask in masks.items()}

    def on_step_end(self, state) -> None:
        apply_masks(state.model, self.masks)


def finetune_config(config: RunConfig, steps: int, overrides: list[str] | None = None) -> RunConfig:
    """The run's config (+ `overrides`, section.key=value), training `steps` steps on the CPU quietly, with one
    checkpoint at the end."""
    raw = apply_overrides(config.to_dict(), list(overrides or []))
    raw["train"].update(max_steps=steps, max_minutes=None, checkpoint_every=0, keep_checkpoints=1, sample_every=0,
                        eval_metrics=[], early_stopping=None, progress=False, tensorboard=False, device="cpu", init_from=None)
    raw["train"]["eval_every"] = min(raw["train"].get("eval_every") or 0, steps)
    return RunConfig.from_dict(raw)


def finetune(module: nn.Module, config: RunConfig, steps: int, run_dir: Path, *, masks: dict[str, Tensor] | None = None,
             teacher: nn.Module | None = None, overrides: list[str] | None = None) -> tuple[nn.Module, dict]:
    """Train `module` for `steps` steps (in place); (the network to keep — the EMA weights when the run keeps
    them — in eval mode, the record of what was done). `teacher`: the unpruned network, for GAN generators;
    `overrides`: settings of the fine-tuning run (`--set optim.lr=1e-3`), the run's own otherwise."""
    tuned = finetune_config(config, steps, overrides)
    trained: nn.Module = module
    objective = "the family's training step on the run's data"
    if teacher is not None and can_match_outputs(module):
        trained = OutputMatching(module, teacher)
        objective = "output matching: mean squared difference to the unpruned generator's images from the same noise"
    callbacks: list[Callback] = [KeepPruned(masks or {}, "student." if trained is not module else "")]
    callbacks += default_callbacks(tuned, run_dir)
    torch.manual_seed(tuned.train.seed)
    result = fit(tuned, run_dir, callbacks=callbacks, model=trained)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    ema = next((c for c in callbacks if isinstance(c, EMA) and c.averaged is not None), None)
    final = ema.averaged if ema is not None else trained
    if isinstance(final, OutputMatching):
        final = final.student
    record = {"steps": result.step, "objective": objective, **({"settings": list(overrides)} if overrides else {}), "weights": "ema" if ema is not None else "model",
              "metrics": {k: round(v, 5) for k, v in result.metrics.items()}}
    return final.eval(), record
