"""Scores for generated content: pure math on features, probabilities and text.

The functions here take features (or class probabilities, or strings) and return numbers; they know
nothing about feature networks, datasets or the CLI. Each validates its input at the boundary and raises
`aigc.errors.AigcError` with the field and the fix. Results with more than one number are small frozen
dataclasses, one return type per function.

- `distances`: feature statistics, Fréchet distance (FID when the features come from Inception-v3), KID.
- `inception_score`: Inception Score from class probabilities, with splits.
- `prdc`: precision, recall, density and coverage (Naeem et al. 2020).
- `text`: perplexity, bits per character, BLEU (sacrebleu) and ROUGE-L.

Scoring images end to end, one idea per module: `protocol` (the choices a score depends on, and the record
stored with it), `features` (a backbone from `aigc.backbones` as a frozen, eval-mode feature network),
`reference` (real images' features, cached), `evaluate` (generate through the one pipeline and score),
`report` (eval.json, comparisons), `callback` (scores during training), `prompt_accuracy` (text-to-image).
"""

from __future__ import annotations

from aigc.metrics.distances import (
    FeatureStats,
    KernelDistance,
    feature_statistics,
    frechet_distance,
    kernel_distance,
)
from aigc.metrics.inception_score import InceptionScore, inception_score
from aigc.metrics.prdc import PRDC, precision_recall_density_coverage
from aigc.metrics.text import (
    BleuScore,
    RougeScore,
    bits_per_character,
    bleu,
    longest_common_subsequence_length,
    perplexity,
    rouge_l,
)

__all__ = [
    "PRDC",
    "BleuScore",
    "FeatureStats",
    "InceptionScore",
    "KernelDistance",
    "RougeScore",
    "bits_per_character",
    "bleu",
    "feature_statistics",
    "frechet_distance",
    "inception_score",
    "kernel_distance",
    "longest_common_subsequence_length",
    "perplexity",
    "precision_recall_density_coverage",
    "rouge_l",
]
