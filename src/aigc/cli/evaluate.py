"""`aigc eval` — score a run's samples (FID-style, KID, IS, precision/recall), or compare several runs.

    aigc eval RUN --metrics fid,kid,is,prdc -n 10000 [--json]     scores; writes RUN/eval.json
    aigc eval dcgan-mnist -n 10000 --out DIR                       a zoo model (`aigc models list`)
    aigc eval --compare RUN_A RUN_B ... [--out report.md]          a markdown table, same protocol or refusal
    aigc eval --real mnist --real-split test                       real images scored the same way (the floor)

A thin wrapper over `aigc.metrics.evaluate` (scores) and `aigc.metrics.report` (compare); every user mistake is an AigcError (exit status 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from aigc.errors import AigcError

console = Console()


def eval_command(
    runs: list[Path] = typer.Argument(None, help="A run folder or checkpoint; with --compare, two or more run folders."),
    metrics: str = typer.Option("fid,kid,is,prdc", "--metrics", help="Comma-separated: fid, kid, is, prdc."),
    num_samples: int = typer.Option(10_000, "-n", "--num-samples", min=1, help="Generated images (10,000 is the usual protocol)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Image i uses seed + i; also seeds KID's subsets."),
    feature_network: Optional[str] = typer.Option(
        None, "--feature-network",
        help="mnist-classifier, fashion-classifier, efficientnet-lite0, inception-v3, or a classifier run folder. "
        "Default from the dataset: mnist -> mnist-classifier, fashion-mnist -> fashion-classifier, RGB -> efficientnet-lite0.",
    ),
    inception_weights: Optional[Path] = typer.Option(
        None, "--inception-weights", envvar="AIGC_INCEPTION_WEIGHTS",
        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth, for --feature-network inception-v3 (never downloaded).",
    ),
    reference_split: str = typer.Option("train", "--reference-split", help="Real images to compare with: train or test."),
    reference_count: Optional[int] = typer.Option(None, "--reference-count", min=2, help="Real reference images (default: as many as -n, at most the whole split)."),
    batch_size: int = typer.Option(500, "--batch-size", min=1, max=1024, help="Images generated per call."),
    weights: str = typer.Option("auto", "--weights", help="auto (EMA when present), ema or model."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 or auto."),
    kid_subset_size: int = typer.Option(1000, "--kid-subset-size", min=2, help="KID: samples per subset."),
    kid_subsets: int = typer.Option(100, "--kid-subsets", min=1, help="KID: number of subsets."),
    is_splits: int = typer.Option(10, "--is-splits", min=1, help="Inception Score: number of splits."),
    prdc_k: int = typer.Option(5, "--prdc-k", min=1, help="Precision/recall/density/coverage: k nearest neighbours."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="AIGC_CACHE_DIR", help="Reference-feature cache (default ~/.cache/aigc)."),
    as_json: bool = typer.Option(False, "--json", help="Print the eval.json document instead of a table."),
    compare: bool = typer.Option(False, "--compare", help="Compare the runs' eval.json in a markdown report."),
    out: Optional[Path] = typer.Option(
        None, "--out",
        help="Where to write: a run's eval.json and eval-samples.png (a folder; default the run folder), "
        "the --compare report (default comparison.md), or the --real JSON file.",
    ),
    real: Optional[str] = typer.Option(None, "--real", help="Score real images of this dataset instead of a run."),
    real_split: str = typer.Option("test", "--real-split", help="--real: the split scored against --reference-split."),
) -> None:
    """Score generated images against real ones, with the protocol recorded next to every number."""
    from aigc.config import pick_device
    from aigc.metrics.evaluate import evaluate_real, evaluate_run
    from aigc.metrics.protocol import MetricSettings, Protocol
    from aigc.metrics.report import compare_runs

    pick_device(device, field="--device")  # a device this machine lacks is an error now, not a traceback later
    runs = list(runs or [])
    if compare:
        report = compare_runs(runs, out or Path("comparison.md"))
        console.print(f"wrote {report}")
        return
    from aigc.metrics.audio import is_audio_run, summary, write_audio_eval
    from aigc.metrics.music import is_music_run, music_summary, write_music_eval

    if len(runs) == 1 and real is None and is_music_run(runs[0]):  # pitch classes, density, key (metrics/music.py)
        document, written = write_music_eval(runs[0], out=out, count=num_samples, seed=seed, reference_split=reference_split)
        console.print_json(json.dumps(document, default=float)) if as_json else console.print(music_summary(document), highlight=False)
        if written is not None and not as_json:
            console.print(f"wrote {written}")
        return
    if len(runs) == 1 and real is None and is_audio_run(runs[0]):  # IS/FD-DigitClassifier (metrics/audio.py)
        document, written = write_audio_eval(runs[0], out=out, feature_network=feature_network, count=num_samples, seed=seed, batch_size=min(batch_size, 256), reference_split=reference_split)
        console.print_json(json.dumps(document, default=float)) if as_json else console.print(summary(document), highlight=False)
        if written is not None and not as_json:
            console.print(f"wrote {written}")
        return
    protocol = Protocol(
        metrics=metrics, num_samples=num_samples, seed=seed, feature_network=feature_network,
        inception_weights=inception_weights, reference_split=reference_split, reference_count=reference_count,
        settings=MetricSettings(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, is_splits=is_splits, prdc_k=prdc_k),
    )
    if real is not None:
        if runs:
            raise AigcError("--real scores a dataset, not a run", field="RUN", fix="leave the run out, or drop --real")
        report = evaluate_real(real, protocol, split=real_split, device=device, cache_dir=cache_dir)
        title = f"{real} {real_split} images"
    else:
        if len(runs) != 1:
            raise AigcError(
                f"expected one run folder or checkpoint, got {len(runs)}",
                field="RUN",
                fix="aigc eval RUN, or aigc eval --compare RUN_A RUN_B ... to compare runs already scored",
            )
        report = evaluate_run(
            runs[0], protocol, batch_size=batch_size, weights=weights, device=device, cache_dir=cache_dir, out_dir=out
        )
        title = f"{report.subject['run']} (step {report.subject['step']}, {report.subject['weights']} weights)"
    document = report.to_dict()
    if out is not None and real is not None:
        from aigc.files import atomic_write_text

        atomic_write_text(out, json.dumps(document, indent=2) + "\n")
    if as_json:
        print(json.dumps(document, indent=2))
        return
    _print_table(report, title)
    for path in report.written:
        console.print(f"wrote {path}")
    if real is None and not report.written:
        console.print("a zoo model's scores are not written into the package; pass --out FOLDER to keep them")


def _print_table(report, title: str) -> None:
    from aigc.metrics.report import summary_lines

    table = Table("score", "value", "", title=f"Scores for {title}")
    for metric, score in report.scores.items():
        if metric == "prdc":
            for name in ("precision", "recall", "density", "coverage"):
                table.add_row(name, f"{score[name]:.4f}", f"k={report.protocol['metric_settings']['prdc']['k']}, higher is better")
        elif metric == "fid":
            table.add_row(score["label"], f"{score['value']:.4f}", "lower is better")
        else:
            better = "lower" if metric == "kid" else "higher"
            table.add_row(score["label"], f"{score['mean']:.5g} ± {score['std']:.2g}", f"mean ± std, {better} is better")
    console.print(table)
    for line in summary_lines(report):
        console.print(line, style="yellow" if line.startswith("warning") else "dim", highlight=False, markup=False)
