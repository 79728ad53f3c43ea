"""The one training loop and what plugs into it (callbacks, sampler, distributed helpers, optimizers)."""
