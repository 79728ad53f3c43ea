"""`aigc robustness TARGET --attack fgsm|pgd --eps E` — a classifier's accuracy under adversarial attack."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console

console = Console()


def _classifier_and_data(target: str):
    """(classifier module, its test inputs — uint8 images [N, C, H, W] or int16 clips [N, 1, T] —, labels, where
    they came from) for a packaged classifier name or an image / audio classifier run or checkpoint folder."""
    from aigc.backbones import load_backbone
    from aigc.backbones.classifier import PACKAGED
    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.errors import AigcError
    from aigc.metrics.audio import PACKAGED_NAME as AUDIO_CLASSIFIER
    from aigc.metrics.audio import load_digit_classifier

    if target in PACKAGED:
        classifier = load_backbone(target).classifier
        data = DataConfig(name=PACKAGED[target][0])
    elif target == AUDIO_CLASSIFIER:  # the spoken-digit classifier behind IS/FD-DigitClassifier
        classifier, data = load_digit_classifier().module, DataConfig(name="spoken-digits")
    else:
        from aigc.loading import load

        loaded = load(target)
        if loaded.info.family not in ("classifier", "audio-classifier"):
            raise AigcError(f"{target} is a {loaded.info.family!r} model, not a classifier", field="TARGET",
                            fix=f"name {', '.join(PACKAGED)} or {AUDIO_CLASSIFIER}, or the run folder of `aigc train classifier-...` / `audio-classifier-...`")
        classifier, data = loaded.module, loaded.info.config.data
    bundle = load_dataset(data, classifier.config)
    split, which = (bundle.test, "test") if bundle.test is not None else (bundle.val, "validation")
    if split is None:
        raise AigcError(f"the dataset {data.name!r} has no test or validation split to attack", field="TARGET", fix="train with data.val_fraction above 0")
    inputs = split.clips.unsqueeze(1) if hasattr(split, "clips") else split.images  # audio: [N, T] int16 -> [N, 1, T]
    return classifier, inputs, split.labels, f"{data.name} {which} split"


def robustness_command(
    target: str = typer.Argument(..., help="mnist-classifier, fashion-classifier, audio-digit-classifier, or a classifier / audio-classifier run folder."),
    attack: str = typer.Option("pgd", "--attack", help="fgsm (one step) or pgd (iterated, from a random start)."),
    eps: list[float] = typer.Option([0.1], "--eps", help="L-inf budget, a share of the input range (0.1 = 25.5 of 255 grey levels; 0.01 = 1% of audio full scale); repeatable."),
    steps: int = typer.Option(10, "--steps", help="PGD iterations."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="PGD step in pixel units (default 2.5 * eps / steps)."),
    limit: int = typer.Option(1000, "--limit", min=1, help="Attack the first N test images (or clips)."),
    seed: int = typer.Option(0, "--seed", help="Seeds PGD's random starts."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Clean accuracy and accuracy under an FGSM or PGD attack (Goodfellow et al. 2015; Madry et al. 2018)
    on the target's test images (clips for an audio classifier), for each --eps."""
    from aigc.safety.robustness import check_attack, evaluate_robustness

    for value in eps:  # a bad option fails before anything loads
        check_attack(attack, value, steps, alpha)
    classifier, images, labels, source = _classifier_and_data(target)
    images, labels = images[:limit], labels[:limit]
    reports = [evaluate_robustness(classifier, images, labels, attack=attack, eps=value, steps=steps, alpha=alpha, target=target, seed=seed) for value in eps]
    if as_json:
        print(json.dumps([{**report.to_dict(), "data": source} for report in reports], indent=2))
        return
    console.print(f"[bold]{target}[/] on {len(images)} {'clips' if images.ndim == 3 else 'images'} of the {source}", highlight=False)
    for report in reports:
        how = "FGSM" if report.attack == "fgsm" else f"PGD {report.steps} steps of {report.alpha:.4f}"
        console.print(f"  {how}, eps {report.eps:g}: clean {report.clean_accuracy:.2%} -> attacked {report.attacked_accuracy:.2%}  [dim]({report.cpu_seconds:.1f} CPU-s)[/]", highlight=False)
