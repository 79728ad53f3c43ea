"""Where int8 pays on this CPU: float32 nn.Linear against aigc's Int8Linear (the kernel of
torch.ao.quantization.quantize_dynamic), float32 convolutions against StaticInt8 (`--quantize static`),
and the GPT against its `aigc optimize --quantize dynamic` copy.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimize_int8.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimize_int8.py --gpt gpt-shakespeare --int8 runs/gpt-int8

1. One Linear layer (width x width), rows of input 1 / 16 / 256: median microseconds per call.
1b. One 3x3 Conv2d and one 4x4 stride-2 ConvTranspose2d (width -> width) on 14 x 14 maps, batch 1 / 16 / 64:
   float32 against StaticInt8 (calibrated on the same input; quantise in, int8 kernel, dequantise out).
2. The GPT's forward over [B, 128] tokens (scoring, prompt prefill) for B = 1, 8, 32, and generating 64
   tokens one at a time with the KV cache (batch 1): median seconds, float32 and int8 in alternation.
Same threads for both (torch.set_num_threads(--threads)). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch
from torch import nn

import aigc
from aigc.generation.text import TextRequest
from aigc.optimize.quantize import Int8Linear, StaticInt8
from machine import cpu_name  # benchmarks run as scripts: this folder is on sys.path


def median_seconds(function, repeats: int, budget: float = 0.2) -> float:
    """Median over `repeats` rounds of the mean time of as many calls as fit in `budget` seconds."""
    function()
    rounds = []
    for _ in range(repeats):
        calls, started = 0, time.perf_counter()
        while True:
            function()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= budget:
                break
        rounds.append(elapsed / calls)
    return statistics.median(rounds)


@torch.inference_mode()
def linear_table(widths, rows_list, repeats: int) -> list[dict]:
    table = []
    for width in widths:
        layer = nn.Linear(width, width)
        quantized = Int8Linear.from_linear(layer)
        for rows in rows_list:
            x = torch.randn(rows, width)
            fp32 = median_seconds(lambda: layer(x), repeats)
            int8 = median_seconds(lambda: quantized(x), repeats)
            table.append({"width": width, "rows": rows, "fp32_us": round(fp32 * 1e6, 1), "int8_us": round(int8 * 1e6, 1),
                          "speedup": round(fp32 / int8, 2)})
    return table


@torch.inference_mode()
def conv_table(widths, batches, repeats: int, size: int = 14) -> list[dict]:
    table = []
    for kind, make in (("conv2d 3x3", lambda w: nn.Conv2d(w, w, 3, padding=1)), ("conv_transpose2d 4x4 s2", lambda w: nn.ConvTranspose2d(w, w, 4, 2, 1))):
        for width in widths:
            layer = make(width)
            for batch in batches:
                x = torch.randn(batch, width, size, size).relu()
                out = layer(x)
                quantized = StaticInt8.from_float(layer, (0.0, float(x.max())), (float(out.min()), float(out.max())))
                fp32 = median_seconds(lambda: layer(x), repeats)
                int8 = median_seconds(lambda: quantized(x), repeats)
                table.append({"layer": kind, "width": width, "batch": batch, "fp32_us": round(fp32 * 1e6, 1),
                              "int8_us": round(int8 * 1e6, 1), "speedup": round(fp32 / int8, 2)})
    return table


@torch.inference_mode()
def gpt_table(fp32_name: str, int8_name: str, batches, repeats: int) -> dict:
    fp32, int8 = aigc.load(fp32_name, safety=False), aigc.load(int8_name, safety=False)
    length = fp32.module.config.context_length
    vocab = fp32.module.config.vocab_size
    forward = []
    for batch in batches:
        ids = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
        a = median_seconds(lambda: fp32.module(ids), repeats)
        b = median_seconds(lambda: int8.module(ids), repeats)
        forward.append({"batch": batch, "tokens": batch * length, "fp32_s": round(a, 5), "int8_s": round(b, 5), "speedup": round(a / b, 2)})
    request = TextRequest(prompt="ROMEO:", max_tokens=64, min_tokens=64, seed=0)
    a = median_seconds(lambda: fp32.generate(request), repeats, budget=0.0)
    b = median_seconds(lambda: int8.generate(request), repeats, budget=0.0)
    generation = {"tokens": 64, "fp32_s": round(a, 4), "int8_s": round(b, 4), "speedup": round(a / b, 2)}
    return {"fp32": fp32_name, "int8": int8_name, "forward": forward, "generate_batch1_kv_cache": generation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpt", default=None, help="a float GPT run or zoo name (e.g. gpt-shakespeare)")
    parser.add_argument("--int8", default=None, help="its `aigc optimize --quantize dynamic` run folder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    report = {
        "machine": f"{cpu_name()}, torch {torch.__version__}, {torch.backends.quantized.engine} engine",
        "threads": args.threads,
        "linear": linear_table((128, 512, 1024), (1, 16, 256), args.repeats),
        "conv": conv_table((32, 64, 256), (1, 16, 64), args.repeats),
    }
    if args.gpt and args.int8:
        report["gpt"] = gpt_table(args.gpt, args.int8, (1, 8, 32), args.repeats)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
