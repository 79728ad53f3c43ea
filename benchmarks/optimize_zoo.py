"""`aigc optimize` on the zoo models, each against its float32 original in the same process: the numbers of
benchmarks/RESULTS.md ("Make it smaller and faster").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimize_zoo.py --out /tmp/optimize-zoo [--finetune 1000] [--samples 2000]

Recipes: gpt-shakespeare --quantize dynamic; dcgan-mnist and t2i-diffusion-mnist --quantize static; dcgan-mnist --prune 0.5 --structured --finetune N (output
matching: the zoo ships the generator alone), and the same with --criterion bn --prune-layer generator.network.body.2=0 (dcgan-half-bn);
gpt-shakespeare --distill gpt-shakespeare --set model.num_layers=1 --student-init teacher --steps 1000 (gpt-student); dcgan-mnist and gpt-shakespeare --export onnx (the report
times onnxruntime beside eager PyTorch). Each writes OUT/NAME/optimize.{json,md}; this prints the tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aigc.optimize.pipeline import Plan, distill, optimize
from aigc.optimize.report import Settings, markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--finetune", type=int, default=1000, help="fine-tuning steps after channel pruning")
    parser.add_argument("--samples", type=int, default=2000, help="generated images per FD")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=None, help="recipe names to run (default: all)")
    args = parser.parse_args()
    settings = Settings(repeats=args.repeats, threads=1, quality_samples=args.samples)
    recipes = {
        "gpt-int8": ("gpt-shakespeare", Plan(quantize="dynamic")),
        "dcgan-half": ("dcgan-mnist", Plan(prune=0.5, structured=True, finetune=args.finetune)),
        # half the parameters: the projection's channels halved by BatchNorm scale, the transposed conv kept whole
        "dcgan-half-bn": ("dcgan-mnist", Plan(prune=0.5, structured=True, criterion="bn", prune_layers=(("generator.network.body.2", 0.0),),
                                              finetune=args.finetune)),
        "dcgan-static": ("dcgan-mnist", Plan(quantize="static")),
        "diffusion-static": ("t2i-diffusion-mnist", Plan(quantize="static")),
        "dcgan-onnx": ("dcgan-mnist", Plan(export="onnx")),
        "gpt-onnx": ("gpt-shakespeare", Plan(export="onnx")),
    }
    summary = {}
    for name, (source, plan) in recipes.items():
        if args.only and name not in args.only:
            continue
        result = optimize(source, args.out / name, plan, settings=settings, force=True, measure_quality=name != "gpt-onnx")
        print(f"## {name}: aigc optimize {source} {plan}\n\n{markdown(result.report)}", flush=True)
        summary[name] = result.report["ratios"]
    if not args.only or "gpt-student" in args.only:  # a 1-block student started from the teacher's embeddings and block 0
        result = distill("gpt-shakespeare", args.out / "gpt-student", "gpt-shakespeare", 1000, overrides=["model.num_layers=1"],
                         student_init="teacher", settings=settings, force=True)
        print(f"## gpt-student: aigc optimize gpt-shakespeare --distill gpt-shakespeare --set model.num_layers=1 --student-init teacher --steps 1000\n\n"
              f"{markdown(result.report)}", flush=True)
        summary["gpt-student"] = result.report["ratios"]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
