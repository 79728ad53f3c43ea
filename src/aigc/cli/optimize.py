"""`aigc optimize RUN --out RUN-small ...` — make a trained model smaller or faster and measure what it cost.

    aigc optimize gpt-shakespeare --out runs/gpt-int8 --quantize dynamic
    aigc optimize dcgan-mnist --out runs/dcgan-half --prune 0.5 --structured --finetune 300
    aigc optimize dcgan-mnist --out runs/dcgan-half --prune 0.5 --structured --prune-layer generator.network.body.2=0 --finetune 3000
    aigc optimize dcgan-mnist --out runs/dcgan-onnx --export onnx
    aigc optimize gpt-shakespeare --out runs/gpt-student --distill gpt-shakespeare --set model.num_layers=1 --steps 1000
    aigc optimize --report-only runs/dcgan runs/dcgan-half

A thin wrapper over `aigc.optimize.pipeline` (the steps) and `aigc.optimize.report` (the table); every user
mistake is an AigcError (exit status 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from aigc.errors import AigcError

console = Console()


def layer_amount(text: str) -> tuple[str, float]:
    """--prune-layer PATH=AMOUNT -> (PATH, AMOUNT)."""
    path, _, value = text.partition("=")
    try:
        return path.strip(), float(value)
    except ValueError:
        raise AigcError(f"--prune-layer takes PATH=AMOUNT, got {text!r}", field="--prune-layer", fix="e.g. --prune-layer generator.network.body.2=0") from None


def optimize_command(
    run: Optional[str] = typer.Argument(None, help="A run folder, checkpoint folder or zoo model name (`aigc models list`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="The optimised run folder to write (a normal run: aigc generate/eval/load use it)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="dynamic: int8 weights for Linear layers (text models, GAN projections); static: int8 weights and activations for Linear and conv layers, calibrated (conv networks)."),
    calibrate: int = typer.Option(8, "--calibrate", help="With --quantize static: generation requests of the family's preview request whose activations fix the int8 scales."),
    prune: Optional[float] = typer.Option(None, "--prune", help="Fraction (0..1) of weights to remove by magnitude; with --structured, of conv channels."),
    structured: bool = typer.Option(False, "--structured", help="Remove whole conv channels, so that the tensors shrink."),
    prune_layer: list[str] = typer.Option([], "--prune-layer", help="With --structured: PATH=AMOUNT, a layer's own share of channels to remove (0 keeps it whole), e.g. generator.network.body.2=0 (repeatable; a wrong PATH lists the right ones)."),
    criterion: str = typer.Option("l1", "--criterion", help="With --structured: rank channels by L1 filter norm (l1) or by the scale of the BatchNorm after them (bn)."),
    scope: str = typer.Option("global", "--scope", help="Magnitude pruning: rank weights across all layers (global) or per layer."),
    low_rank: Optional[int] = typer.Option(None, "--low-rank", help="Factorise Linear and Conv2d layers by truncated SVD at this rank."),
    separable: bool = typer.Option(False, "--separable", help="Replace k x k convolutions by depthwise + 1 x 1 ones (then --finetune)."),
    distill: Optional[str] = typer.Option(None, "--distill", help="A student preset (smaller, same modality): train it from this run as teacher."),
    steps: int = typer.Option(1000, "--steps", help="With --distill: training steps of the student."),
    set_: list[str] = typer.Option([], "--set", help="With --distill: override a student setting, e.g. --set model.num_layers=2; with --finetune: a setting of the fine-tuning run, e.g. --set optim.lr=1e-3 (repeatable)."),
    student_init: str = typer.Option("random", "--student-init", help="With --distill: random (the preset's initialisation) or teacher (a GPT student starts from the teacher's embeddings and evenly spaced blocks; same width and heads)."),
    temperature: float = typer.Option(2.0, "--temperature", help="With --distill of a language model: T of the softened logits."),
    alpha: float = typer.Option(0.5, "--alpha", help="With --distill of a language model: weight of the soft (KL) term, 1 - alpha on the true tokens."),
    finetune: int = typer.Option(0, "--finetune", help="Training steps after pruning or factorising, through the one training loop."),
    export: Optional[str] = typer.Option(None, "--export", help="onnx: also write RUN-small/onnx/model.onnx, checked against PyTorch with onnxruntime."),
    report_only: Optional[tuple[str, str]] = typer.Option(None, "--report-only", help="A B: compare two runs (say, a run and its optimised copy) instead of optimising."),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Timed generations per model for the latency column."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch threads for the timings (default: as the process has them)."),
    samples: int = typer.Option(500, "--samples", min=2, help="Generated images per model for the FD column."),
    feature_network: Optional[str] = typer.Option(None, "--feature-network", help="FD's feature network (default from the dataset; see aigc eval --help)."),
    no_quality: bool = typer.Option(False, "--no-quality", help="Skip the quality column (size and latency only)."),
    force: bool = typer.Option(False, "--force", help="Replace an optimised run already in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of the table."),
) -> None:
    """Quantise, prune or factorise (+ fine-tune), or export a trained model into a new run folder, with a measured report."""
    from aigc.optimize import report as reporting

    settings = reporting.Settings(repeats=repeats, threads=threads, quality_samples=samples, feature_network=feature_network)
    if report_only:
        if run is not None:
            raise AigcError("--report-only compares the two runs it names; leave RUN out", field="--report-only",
                            fix="aigc optimize --report-only RUN_A RUN_B")
        result = reporting.compare_runs(report_only[0], report_only[1], settings, measure_quality=not no_quality)
        console.print_json(json.dumps(result)) if as_json else console.print(reporting.markdown(result), highlight=False, soft_wrap=True)
        return
    if run is None or out is None:
        raise AigcError("aigc optimize needs a run and --out", field="RUN" if run is None else "--out",
                        fix="aigc optimize RUN --out RUN-small --quantize dynamic (or --report-only RUN_A RUN_B)")
    from aigc.optimize.pipeline import Plan, distill as distill_run, optimize

    if distill is not None:
        if any((quantize, prune, low_rank, separable, finetune, export)):
            raise AigcError("--distill trains a new network; the other steps apply to an existing one", field="--distill",
                            fix="distil first, then optimise the student: aigc optimize RUN-student --out RUN-student-int8 --quantize dynamic")
        result = distill_run(run, out, distill, steps, overrides=set_, settings=settings, measure_quality=not no_quality, force=force,
                             student_init=student_init, temperature=temperature, alpha=alpha)
        console.print(reporting.markdown(result.report), highlight=False, soft_wrap=True)
        console.print(f"distilled run: {result.out}  (aigc generate {result.out})", highlight=False, soft_wrap=True)
        return
    if student_init != "random" or temperature != 2.0 or alpha != 0.5:
        raise AigcError("--student-init, --temperature and --alpha set up a distillation; no --distill PRESET was given", field="--distill",
                        fix="add --distill PRESET --steps N, or leave them out")
    plan = Plan(prune=prune, structured=structured, scope=scope, prune_layers=tuple(layer_amount(text) for text in prune_layer), criterion=criterion,
                finetune_overrides=tuple(set_), low_rank=low_rank, separable=separable, finetune=finetune, quantize=quantize,
                calibrate=calibrate, export=export)
    result = optimize(run, out, plan, settings=settings, measure_quality=not no_quality, force=force)
    if as_json:
        console.print_json(json.dumps(result.report))
    else:
        console.print(reporting.markdown(result.report), highlight=False, soft_wrap=True)
    console.print(f"optimised run: {result.out}  (aigc generate {result.out})", highlight=False, soft_wrap=True)
    for path in result.written[1:]:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
