"""Prompt accuracy of a text-to-image model trained on captioned classes (MNIST digits, Fashion-MNIST):
the share of images that a classifier labels as the class the prompt asked for.

    report = prompt_accuracy(model, "mnist-captions", template_set="heldout", samples_per_prompt=10)
    report["accuracy"], report["by_language"]["zh"], report["protocol"]

Prompts are built from the dataset's caption templates (`aigc.data.captions`); the `heldout` set was never
seen in training, so a high score means the model follows prompts worded in new ways, in each language.
Image j of prompt p uses seed `seed + 1000 * p + j`. The classifier is a packaged one (metrics/features.py),
in eval mode; its name and weights sha256 are recorded with the score.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from aigc.data.captions import CLASS_CAPTIONS, LANGUAGES, class_captions
from aigc.errors import AigcError
from aigc.metrics.features import default_network_name, load_feature_network


def prompt_accuracy(
    model: Any,
    dataset: str = "mnist-captions",
    *,
    template_set: str = "heldout",
    languages: Sequence[str] = LANGUAGES,
    samples_per_prompt: int = 10,
    seed: int = 0,
    num_classes: int = 10,
    feature_network: str | None = None,
    **request_options: Any,
) -> dict[str, Any]:
    """Generate `samples_per_prompt` images for every (class, template, language) prompt with `model` (a
    LoadedModel, or a module) through the one generation path, and classify them.
    `request_options` (guidance, sampler, sample_steps) go into each request unchanged."""
    if dataset not in CLASS_CAPTIONS:
        raise AigcError(f"{dataset!r} has no class captions", field="dataset", fix=f"use one of: {', '.join(CLASS_CAPTIONS)}")
    from aigc.generation.pipeline import generate

    module, info = (model.module, model.info) if hasattr(model, "info") else (model, None)
    if not hasattr(module, "request_class") or "prompt" not in module.request_class.model_fields:
        raise AigcError("this model takes no prompts", field="model", fix="measure a text-to-image model (t2i-*)")
    channels = info.config.model.channels if info is not None else 1
    network = load_feature_network(feature_network or default_network_name(dataset, channels))
    correct: dict[str, int] = {}
    total: dict[str, int] = {}
    per_class = np.zeros((num_classes, 2), dtype=np.int64)  # [correct, total]
    started = time.perf_counter()
    prompt_index = 0
    images_made = 0
    spreads: list[float] = []  # per prompt: pixel std across its samples
    for language in languages:
        for label in range(num_classes):
            for prompt in class_captions(dataset, label, template_set, language):
                request = module.request_class(count=samples_per_prompt, seed=seed + 1000 * prompt_index, prompt=prompt, **request_options)
                images = generate(module, request, info=info).images
                predicted = network.probabilities(images).argmax(axis=1)
                spreads.append(float((images.astype(np.float32) / 255).std(axis=0).mean()))
                hits = int((predicted == label).sum())
                correct[language] = correct.get(language, 0) + hits
                total[language] = total.get(language, 0) + len(predicted)
                per_class[label] += (hits, len(predicted))
                prompt_index += 1
                images_made += len(predicted)
    seconds = time.perf_counter() - started
    return {
        "accuracy": sum(correct.values()) / sum(total.values()),
        "by_language": {language: correct[language] / total[language] for language in correct},
        "by_class": [float(c / t) for c, t in per_class],
        # A model can follow prompts by drawing one image per prompt; this mean per-pixel std (in [0, 1]) of
        # each prompt's samples shows it. 10 per prompt: real MNIST digits of the class 0.129, a collapsed
        # t2i-cgan ~0.02 (it grows with samples_per_prompt: 0.100 for real digits at 4).
        "within_prompt_std": float(np.mean(spreads)) if samples_per_prompt > 1 else None,
        "images": images_made,
        "seconds": round(seconds, 1),
        "protocol": {
            "dataset": dataset,
            "template_set": template_set,
            "prompts": prompt_index,
            "samples_per_prompt": samples_per_prompt,
            "seed": seed,
            "request_options": request_options,
            "classifier": network.describe(),
        },
    }
