"""`aigc generate --compile`: generate through `torch.compile`d networks, where a benchmark shows it pays.

What is compiled is the network generation calls in a loop — a GAN's generator, a diffusion model's U-Net
(once per sampler step) — with `dynamic=False` (one graph per request shape; a new batch size compiles
again). The first request pays the compilation (tens of seconds on this CPU), so the switch is for a
long-lived process (the studio, a notebook, a batch of requests), not for one `aigc generate` call.

MEASURED holds the steady-state speedups of `benchmarks/compile_speed.py` on the project machine
(benchmarks/RESULTS.md, "torch.compile"): a family whose figure is below 1 is generated eagerly and the
switch says so, with the figure; a family with no figure is compiled with a warning that it is unmeasured.
"""

from __future__ import annotations

import warnings

import torch

from aigc.errors import AigcWarning
from aigc.loading import LoadedModel

# network attribute -> (what it is, steady-state speedup measured by benchmarks/compile_speed.py, the request,
# seconds of the first compiled request). Measured at 1 thread on the shared 2-core machine at load 20-24.
MEASURED: dict[str, tuple[str, float, str, float]] = {
    "generator": ("GAN generator", 1.148, "dcgan-mnist, 16 images", 48),
    "unet": ("diffusion U-Net", 1.212, "t2i-diffusion-mnist, 16 images of the preview request", 852),
}
NETWORKS = ("generator", "unet")


def compiled_network(model: LoadedModel) -> str | None:
    """The attribute of the network --compile would compile, or None when the family has none."""
    return next((name for name in NETWORKS if isinstance(getattr(model.module, name, None), torch.nn.Module)), None)


def with_compile(model: LoadedModel) -> LoadedModel:
    """`model` generating through torch.compile where that was measured to pay; otherwise eager, and a
    warning that says why."""
    name = compiled_network(model)
    if name is None:
        why = ("a language model's time goes to its token-by-token step; compiling the GPT's forward, which only the prefill "
               "runs, measured 1.06x after a 199 s first request" if hasattr(model.module, "start_decoding") else "no measurement for it yet")
        warnings.warn(f"--compile: {model.info.family} generates eagerly: only GAN generators and diffusion U-Nets are compiled "
                      f"({why}; see benchmarks/RESULTS.md)", AigcWarning, stacklevel=2)
        return model
    what, speedup, request, first_call = MEASURED.get(name, (name, None, "", None))
    if speedup is not None and speedup < 1:
        warnings.warn(f"--compile: not applied: a compiled {what} generated {speedup:.2f}x as fast as eager ({request}; "
                      "benchmarks/RESULTS.md), so this model generates eagerly", AigcWarning, stacklevel=2)
        return model
    if speedup is None:
        warnings.warn(f"--compile: no measurement for a compiled {what} yet; compiling anyway", AigcWarning, stacklevel=2)
    else:
        warnings.warn(f"--compile: the first request compiles the {what} ({first_call:.0f} s for {request} on the loaded "
                      f"project machine); later requests of the same shape ran {speedup:.2f}x as fast as eager", AigcWarning, stacklevel=2)
    setattr(model.module, name, torch.compile(getattr(model.module, name), dynamic=False))
    return model
