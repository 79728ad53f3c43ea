"""Text metrics: perplexity, bits per character, BLEU, ROUGE-L and CIDEr-D.

- Perplexity and bits per character turn a summed negative log-likelihood (natural log, "nats") over a
  held-out split into the two numbers language-model papers report.
- BLEU is sacrebleu's corpus BLEU (Post 2018, https://aclanthology.org/W18-6319/), so scores match what
  papers report; the result carries sacrebleu's signature string, which names the tokenizer and version.
  Use tokenizer="13a" (sacrebleu's default) for English and most languages, "zh" for Chinese.
- ROUGE-L is the LCS-based F-measure (Lin 2004, https://aclanthology.org/W04-1013/), sentence level,
  implemented here; tokens are whitespace words ("whitespace", for English) or characters ("chars", for
  Chinese and other unsegmented scripts), or come from any callable.
- CIDEr-D (Vedantam et al. 2015, https://arxiv.org/abs/1411.5726) is the COCO caption evaluation's own
  code (PyPI `pycocoevalcap`, the `captioning` extra; its CIDEr part is pure Python, only its PTB
  tokenizer needs Java, so the text is tokenized here with sacrebleu's tokenizers instead, as for BLEU).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from aigc.errors import AigcError
from aigc.metrics.distances import is_int

# ---------------------------------------------------------------------------------------------------------
# Perplexity and bits per character


def _check_nll_and_count(total_nll: Any, count: Any, count_field: str) -> None:
    if not isinstance(total_nll, Real) or isinstance(total_nll, bool) or not math.isfinite(total_nll):
        raise AigcError(
            f"expected a finite number of nats, got {total_nll!r}",
            field="total_nll",
            fix="sum the per-token negative log-likelihoods (natural log), e.g. cross_entropy(reduction='sum')",
        )
    if total_nll < 0:
        raise AigcError(
            f"a negative log-likelihood cannot be negative, got {total_nll}",
            field="total_nll",
            fix="pass the summed *negative* log-likelihood (cross-entropy), not the log-likelihood",
        )
    if not is_int(count) or count < 1:
        raise AigcError(
            f"expected a positive integer count, got {count!r}",
            field=count_field,
            fix="pass how many tokens (or characters) the negative log-likelihood was summed over",
        )


def perplexity(total_nll: float, token_count: int) -> float:
    """exp(total_nll / token_count): perplexity from a summed negative log-likelihood in nats."""
    _check_nll_and_count(total_nll, token_count, "token_count")
    mean_nll = total_nll / token_count
    return math.exp(mean_nll) if mean_nll < 709.0 else math.inf  # exp overflows float64 above ~709.78


def bits_per_character(total_nll: float, character_count: int) -> float:
    """total_nll / (character_count * ln 2): bits per character from a summed NLL in nats.

    `character_count` is the number of characters of the evaluated text, whatever the model's tokens are
    (for a character model they coincide; for a subword model the NLL of all tokens covering the text is
    divided by its characters), which makes models with different tokenizers comparable.
    """
    _check_nll_and_count(total_nll, character_count, "character_count")
    return float(total_nll / (character_count * math.log(2)))


# ---------------------------------------------------------------------------------------------------------
# Shared checks for hypotheses and references


def _check_hypotheses(hypotheses: Any) -> list[str]:
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise AigcError(
            f"expected a list of strings, got {type(hypotheses).__name__}",
            field="hypotheses",
            fix='wrap a single sentence in a list: ["the generated sentence"]',
        )
    if len(hypotheses) == 0:
        raise AigcError("no hypotheses were given", field="hypotheses", fix="pass at least one generated text")
    for index, hypothesis in enumerate(hypotheses):
        if not isinstance(hypothesis, str):
            raise AigcError(
                f"hypothesis {index} is {type(hypothesis).__name__}, expected str",
                field="hypotheses",
                fix="decode token ids to text before scoring",
            )
    return list(hypotheses)


def _check_references(references: Any, count: int) -> list[list[str]]:
    """Per-hypothesis lists of references; a bare string stands for a list of one."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise AigcError(
            f"expected a list with one entry per hypothesis, got {type(references).__name__}",
            field="references",
            fix='pass references[i] = the reference (or list of references) for hypotheses[i]',
        )
    if len(references) != count:
        raise AigcError(
            f"expected one entry per hypothesis ({count}), got {len(references)}",
            field="references",
            fix="pass references[i] = the reference (or list of references) for hypotheses[i]",
        )
    result = []
    for index, entry in enumerate(references):
        options = [entry] if isinstance(entry, str) else entry
        if not isinstance(options, Sequence) or not all(isinstance(text, str) for text in options):
            raise AigcError(
                f"references[{index}] must be a string or a list of strings, got {type(entry).__name__}",
                field="references",
                fix="pass references[i] = the reference (or list of references) for hypotheses[i]",
            )
        if len(options) == 0 or any(not text.strip() for text in options):
            raise AigcError(
                f"references[{index}] is empty or contains an empty reference",
                field="references",
                fix="give every hypothesis at least one non-empty reference, or drop that hypothesis",
            )
        result.append(list(options))
    return result


# ---------------------------------------------------------------------------------------------------------
# BLEU (sacrebleu)

# sacrebleu tokenizers that work offline with no extra package (spm/flores download a model; *-mecab need
# MeCab), so a score here never fetches anything by surprise.
BLEU_TOKENIZERS = ("13a", "intl", "zh", "char", "none")


def _check_scoring_input(hypotheses: Any, references: Any, tokenizer: str) -> tuple[list[str], list[list[str]]]:
    """BLEU's and CIDEr's input checked: a sacrebleu tokenizer name, hypotheses and a reference list for each."""
    if tokenizer not in BLEU_TOKENIZERS:
        raise AigcError(
            f"unknown or unsupported tokenizer {tokenizer!r}; expected one of {', '.join(BLEU_TOKENIZERS)}",
            field="tokenizer",
            fix='use "13a" for English and most languages, "zh" for Chinese',
        )
    hypotheses = _check_hypotheses(hypotheses)
    return hypotheses, _check_references(references, len(hypotheses))


@dataclass(frozen=True)
class BleuScore:
    """Corpus BLEU from sacrebleu, with what is needed to read and reproduce it."""

    score: float  # corpus BLEU in [0, 100]
    precisions: tuple[float, ...]  # modified 1..4-gram precisions, in percent
    brevity_penalty: float  # in (0, 1]; below 1 when the hypotheses are shorter than the references
    hypothesis_length: int  # total hypothesis tokens, after tokenization
    reference_length: int  # total effective reference tokens (closest length per sentence)
    tokenizer: str  # sacrebleu tokenizer name ("13a", "zh", ...)
    signature: str  # sacrebleu's reproducibility signature, e.g. "nrefs:1|case:mixed|eff:no|tok:13a|..."


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    tokenizer: str = "13a",
    lowercase: bool = False,
) -> BleuScore:
    """Corpus BLEU of `hypotheses` against `references[i]` (one string or a list of strings per hypothesis).

    `tokenizer` is a sacrebleu tokenizer: "13a" (default; mteval-v13a, for English and most languages),
    "intl", "zh" (Chinese: splits CJK characters, keeps non-Chinese words), "char" or "none".
    Hypotheses may have different numbers of references.
    """
    hypotheses, per_hypothesis = _check_scoring_input(hypotheses, references, tokenizer)
    try:
        from sacrebleu.metrics import BLEU
    except ImportError:  # pragma: no cover - depends on the environment
        raise AigcError(
            "BLEU needs the sacrebleu package, which is not installed",
            field="bleu",
            fix="pip install sacrebleu",
        ) from None

    # sacrebleu wants reference *streams* (stream j = j-th reference of every hypothesis); pad with None
    # where a hypothesis has fewer references, which sacrebleu reads as "no reference here".
    stream_count = max(len(options) for options in per_hypothesis)
    streams = [
        [options[j] if j < len(options) else None for options in per_hypothesis] for j in range(stream_count)
    ]
    metric = BLEU(tokenize=tokenizer, lowercase=lowercase)
    result = metric.corpus_score(hypotheses, streams)
    return BleuScore(
        score=float(result.score),
        precisions=tuple(float(p) for p in result.precisions),
        brevity_penalty=float(result.bp),
        hypothesis_length=int(result.sys_len),
        reference_length=int(result.ref_len),
        tokenizer=tokenizer,
        signature=str(metric.get_signature()),
    )


# ---------------------------------------------------------------------------------------------------------
# ROUGE-L


def _whitespace_tokens(text: str) -> list[str]:
    return text.split()


def _character_tokens(text: str) -> list[str]:
    return [character for character in text if not character.isspace()]


ROUGE_TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "whitespace": _whitespace_tokens,  # English and other space-separated languages
    "chars": _character_tokens,  # Chinese, Japanese and other unsegmented scripts
}


@dataclass(frozen=True)
class RougeScore:
    """ROUGE-L averaged over hypotheses (each against its best-matching reference)."""

    precision: float  # mean of LCS / hypothesis length
    recall: float  # mean of LCS / reference length
    fmeasure: float  # mean of (1 + beta^2) P R / (R + beta^2 P)
    tokenizer: str  # "whitespace", "chars", or the callable's name


def longest_common_subsequence_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence of two token sequences (dynamic programming, O(len a * len b))."""
    if len(a) < len(b):
        a, b = b, a  # keep the row over the shorter sequence
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0] * (len(b) + 1)
        for j, token_b in enumerate(b, start=1):
            current[j] = previous[j - 1] + 1 if token_a == token_b else max(previous[j], current[j - 1])
        previous = current
    return previous[-1]


def _rouge_l_pair(hypothesis: list[str], reference: list[str], beta: float) -> tuple[float, float, float]:
    """(precision, recall, F) of one hypothesis against one reference (Lin 2004, section 3.1, eqs. 2-4)."""
    lcs = longest_common_subsequence_length(hypothesis, reference)
    if lcs == 0:
        return 0.0, 0.0, 0.0
    precision, recall = lcs / len(hypothesis), lcs / len(reference)
    fmeasure = (1 + beta**2) * precision * recall / (recall + beta**2 * precision)
    return precision, recall, fmeasure


def rouge_l(
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    tokenizer: str | Callable[[str], list[str]] = "whitespace",
    beta: float = 1.0,
) -> RougeScore:
    """Sentence-level ROUGE-L (LCS F-measure), averaged over hypotheses.

    `tokenizer`: "whitespace" (words split on whitespace, case-sensitive; for English), "chars" (every
    non-space character; for Chinese), or a callable from text to tokens. With several references a
    hypothesis takes the one with the highest F-measure (as Google's rouge-score does). `beta` weighs
    recall against precision; 1 gives F1.
    """
    if callable(tokenizer):
        tokenize, tokenizer_name = tokenizer, getattr(tokenizer, "__name__", "custom")
    elif tokenizer in ROUGE_TOKENIZERS:
        tokenize, tokenizer_name = ROUGE_TOKENIZERS[tokenizer], str(tokenizer)
    else:
        raise AigcError(
            f"unknown tokenizer {tokenizer!r}; expected one of {', '.join(ROUGE_TOKENIZERS)} or a callable",
            field="tokenizer",
            fix='use "whitespace" for English, "chars" for Chinese',
        )
    if not isinstance(beta, Real) or isinstance(beta, bool) or not beta > 0 or not math.isfinite(beta):
        raise AigcError(f"expected a positive number, got {beta!r}", field="beta", fix="use beta=1.0 (F1)")
    hypotheses = _check_hypotheses(hypotheses)
    per_hypothesis = _check_references(references, len(hypotheses))

    totals = [0.0, 0.0, 0.0]
    for index, (hypothesis, options) in enumerate(zip(hypotheses, per_hypothesis)):
        hypothesis_tokens = list(tokenize(hypothesis))
        best = (0.0, 0.0, -1.0)
        for reference in options:
            reference_tokens = list(tokenize(reference))
            if not reference_tokens:
                raise AigcError(
                    f"references[{index}] has no tokens under tokenizer {tokenizer_name!r}",
                    field="references",
                    fix="give every hypothesis a reference with at least one token",
                )
            score = _rouge_l_pair(hypothesis_tokens, reference_tokens, float(beta))
            if score[2] > best[2]:
                best = score
        totals = [total + value for total, value in zip(totals, best)]
    count = len(hypotheses)
    return RougeScore(
        precision=totals[0] / count, recall=totals[1] / count, fmeasure=totals[2] / count, tokenizer=tokenizer_name
    )


# ---------------------------------------------------------------------------------------------------------
# CIDEr-D (pycocoevalcap)


@dataclass(frozen=True)
class CiderScore:
    """Corpus CIDEr-D (the mean over hypotheses, x 100 as papers print it) and each hypothesis's own."""

    score: float  # mean CIDEr-D x 100 (COCO papers print 100 x the value pycocoevalcap returns)
    per_hypothesis: tuple[float, ...]  # each hypothesis's CIDEr-D, unscaled
    tokenizer: str  # the sacrebleu tokenizer that split the text ("13a", "zh", ...), lowercased
    implementation: str  # "pycocoevalcap VERSION, CIDEr-D n=4 sigma=6"


def cider(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]], *, tokenizer: str = "13a") -> CiderScore:
    """CIDEr-D of `hypotheses[i]` against `references[i]` (one string or a list per hypothesis), computed by
    pycocoevalcap. The document frequencies come from these references (as in the COCO evaluation), so the
    score depends on the whole test set: compare systems on the same images only. Text is lowercased and
    split by a sacrebleu tokenizer ("zh" splits Chinese characters, as BLEU's "zh" does)."""
    hypotheses, per_hypothesis = _check_scoring_input(hypotheses, references, tokenizer)
    try:
        from importlib.metadata import version

        from pycocoevalcap.cider.cider import Cider
        from sacrebleu.metrics import BLEU
    except ImportError:  # pragma: no cover - depends on the environment
        raise AigcError(
            "CIDEr needs the pycocoevalcap package, which is not installed", field="cider", fix="pip install 'aigc[captioning]'"
        ) from None
    split = BLEU(tokenize=tokenizer).tokenizer  # the very tokenizer bleu() uses
    tokens = lambda text: " ".join(split(text.lower()).split())  # noqa: E731  (space-separated tokens, what Cider reads)
    keys = [str(index) for index in range(len(hypotheses))]
    score, scores = Cider().compute_score(
        {key: [tokens(r) for r in options] for key, options in zip(keys, per_hypothesis)},
        {key: [tokens(h)] for key, h in zip(keys, hypotheses)},
    )
    return CiderScore(
        score=100 * float(score), per_hypothesis=tuple(float(s) for s in scores), tokenizer=tokenizer,
        implementation=f"pycocoevalcap {version('pycocoevalcap')}, CIDEr-D n=4 sigma=6",
    )
