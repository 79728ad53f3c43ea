"""`aigc optimize`: make a trained model smaller or faster, and measure what it cost.

One idea per file: `quantize` (int8 Linear layers), `prune` (magnitude and channel pruning), `finetune`
(recovery through the one training loop), `export` (ONNX), `report` (size, latency and quality against the
original), `pipeline` (the steps in order, written as a normal run folder). Every change to the network's
architecture is recorded in the checkpoint (`transforms` in checkpoint.json) and registered by name in
`aigc.registry.TRANSFORMS`, so `aigc.load` rebuilds it without importing this package's training side.

This file imports nothing: loading imports `aigc.optimize.quantize` and `aigc.optimize.prune` through the
registry, and they must stay free of training, metrics and the studio.
"""
