"""Decoding shared by every text model: greedy, temperature, top-k, top-p, repetition penalty, beam search,
stop strings, a token limit, and streaming.

A model plugs in through one function, `start(rows) -> (session, logits)`, that runs its prompt (or
encodes its source) for `rows` sequences at once and returns the logits of the next token, float32
[rows, vocab]; the session then follows the chosen tokens:

    session.advance(tokens [rows]) -> logits [rows, vocab]    one step (KV cache / RNN state inside)
    session.reorder(rows [rows'])                             beam search: new row i continues old row rows[i]

Every sampled sequence draws from its own `torch.Generator` (sample i of a request uses seed `seed + i`),
so any sample can be made again alone and a sample never depends on the others in its batch. Several
samples decode as the rows of one session (`sample_batch`: one forward per token for all of them), each row
drawing exactly what `sample` draws for it alone.
Beam search runs the beams as the rows of one session and is deterministic.

Processing order of the logits at each step (the usual one, as in Hugging Face `generate`):
    1. never emit <pad>, <bos> or <unk> (nor <eos> when the request ignores it or before `min_tokens`)
    2. repetition penalty over the prompt and the text so far (Keskar et al. 2019, CTRL, §4.1,
       https://arxiv.org/abs/1909.05858): a seen token's logit is divided by the penalty when positive,
       multiplied when negative
       then the logit hooks a generation policy sets for the call (`logit_hooks`: a text watermark)
    3. temperature: logits / T (T = 0 means greedy: take the argmax)
    4. top-k: keep the k largest logits
    5. top-p (Holtzman et al. 2019, https://arxiv.org/abs/1904.09751): keep the smallest set of most likely
       tokens whose probabilities sum to >= p (the most likely token is always kept)
    6. sample from the softmax
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import torch
from torch import Tensor

from aigc.data.tokenizers import BOS, EOS, PAD, UNK, UNKNOWN_TEXT, Tokenizer
from aigc.generation.text import TextRequest


class DecodingSession(Protocol):
    def advance(self, tokens: Tensor) -> Tensor: ...

    def reorder(self, rows: Tensor) -> None: ...


StartFunction = Callable[[int], tuple[DecodingSession, Tensor]]
LogitHook = Callable[[Tensor, Sequence[Sequence[int]]], Tensor]  # (logits [rows, vocab], history per row) -> logits

# Set by the generation pipeline for one call (a context variable, so threads and jobs never mix).
_logit_hooks: contextvars.ContextVar[tuple[LogitHook, ...]] = contextvars.ContextVar("aigc_logit_hooks", default=())


@contextlib.contextmanager
def logit_hooks(hooks: Sequence[LogitHook]) -> Iterator[None]:
    token = _logit_hooks.set(tuple(hooks))
    try:
        yield
    finally:
        _logit_hooks.reset(token)


@dataclass(frozen=True)
class Decoded:
    """One finished sequence: its text, its new token ids and why it ended."""

    text: str
    token_ids: list[int]
    finish_reason: str  # "eos", "stop" or "length"
    score: float = 0.0  # beam search: length-normalised log-probability; sampling: 0


# ---------------------------------------------------------------------------------------------------------
# Logit processing (steps 1-5)


def forbid_special_tokens(logits: Tensor, request: TextRequest, generated: int = 0) -> Tensor:
    """`generated`: new tokens so far. Before `request.min_tokens` of them <eos> is forbidden too — a weak
    model's beam search otherwise prefers the empty answer, whose one log-probability beats any sum of
    several (the "empty translation" problem, Stahlberg & Byrne 2019, https://arxiv.org/abs/1908.10090)."""
    # <unk> too: a model may have learned it, but a reader never wants U+FFFD. One fill for all of them.
    banned = _BANNED_WITH_EOS if not request.stop_at_eos or generated < request.min_tokens else _BANNED
    return logits.index_fill_(-1, banned.to(logits.device), float("-inf"))


_BANNED, _BANNED_WITH_EOS = torch.tensor([PAD, BOS, UNK]), torch.tensor([PAD, BOS, UNK, EOS])


def apply_repetition_penalty(logits: Tensor, history: Sequence[Sequence[int]], penalty: float) -> Tensor:
    """CTRL's penalty on every token already in each row's history (logits [rows, vocab], in place)."""
    if penalty == 1.0:
        return logits
    for row, seen in enumerate(history):
        if not seen:
            continue
        ids = torch.tensor(sorted(set(seen)), dtype=torch.long, device=logits.device)
        values = logits[row, ids]
        logits[row, ids] = torch.where(values > 0, values / penalty, values * penalty)
    return logits


def apply_top_k(logits: Tensor, k: int | None) -> Tensor:
    if k is None or k >= logits.shape[-1]:
        return logits
    threshold = torch.topk(logits, k, dim=-1).values[..., -1:]  # [rows, 1], the k-th largest logit
    return logits.masked_fill(logits < threshold, float("-inf"))


def apply_top_p(logits: Tensor, p: float | None) -> Tensor:
    if p is None or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probabilities = sorted_logits.softmax(dim=-1)
    # Drop a token when the tokens ranked above it already reach p (so the top token always stays).
    mass_before = probabilities.cumsum(dim=-1) - probabilities
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_distribution(logits: Tensor, history: Sequence[Sequence[int]], request: TextRequest, generated: int = 0) -> Tensor:
    """Steps 1-5: processed logits [rows, vocab] ready for argmax (greedy) or softmax sampling; `history` is
    each row's prompt + new tokens, `generated` the number of new tokens (the same for every row)."""
    logits = forbid_special_tokens(logits.float().clone(), request, generated)
    logits = apply_repetition_penalty(logits, history, request.repetition_penalty)
    for hook in _logit_hooks.get():
        logits = hook(logits, history)
    if request.greedy:
        return logits
    logits = logits / request.temperature
    logits = apply_top_k(logits, request.top_k)
    return apply_top_p(logits, request.top_p)


def choose_tokens(logits: Tensor, request: TextRequest, generators: Sequence[torch.Generator]) -> list[int]:
    """Step 6 for every row (logits [rows, vocab]), row i drawing from generators[i] only; one sync for all.

    `torch.multinomial(p, 1, generator=g)` is argmax(p / q) with q ~ Exp(1) drawn by g over the whole
    vocabulary (its one-sample fast path, the exponential form of the Gumbel-max trick; aten Distributions.cpp).
    Written out, it runs batched over rows with a generator per row and draws exactly the same tokens."""
    if request.greedy:
        return logits.argmax(dim=-1).tolist()
    probabilities = logits.softmax(dim=-1).cpu()
    waits = torch.empty_like(probabilities)  # [rows, vocab]
    for row, generator in enumerate(generators):
        waits[row].exponential_(1, generator=generator)
    return (probabilities / waits).argmax(dim=-1).tolist()


# ---------------------------------------------------------------------------------------------------------
# Text assembly: stop strings and streaming


class _TextTracker:
    """Turns a growing list of token ids into text, finds stop strings, and says what is safe to emit."""

    def __init__(self, tokenizer: Tokenizer, stop: Sequence[str]):
        self.tokenizer, self.stop = tokenizer, list(stop)
        self.ids: list[int] = []
        self.text = ""
        self.emitted = 0
        # Incremental decoding (decoding all ids at every token made a long sample O(n^2)): the text of
        # ids[:settled] is final, because it ended on a whole character; only the ids after it are decoded
        # again. decode(a + b) == decode(a) + decode(b) whenever decode(a) does not end in U+FFFD (an
        # unfinished UTF-8 character of byte BPE; symbol tokenizers just concatenate).
        self.settled, self.settled_text = 0, ""

    def add(self, token_id: int) -> bool:
        """Append a token; True when a stop string has appeared (the text is then cut before it)."""
        self.ids.append(token_id)
        tail = self.tokenizer.decode(self.ids[self.settled :])
        self.text = self.settled_text + tail
        if not tail.endswith(UNKNOWN_TEXT):
            self.settled, self.settled_text = len(self.ids), self.text
        hits = [self.text.find(s) for s in self.stop]
        hits = [index for index in hits if index >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            return True
        return False

    def safe_text(self, final: bool) -> str:
        """The text that can no longer change: without an incomplete UTF-8 character at the end (byte BPE)
        and without a tail that could still grow into a stop string."""
        if final:
            return self.text
        text = self.text
        if text.endswith(UNKNOWN_TEXT):
            text = text.rstrip(UNKNOWN_TEXT)
        hold = 0
        for stop in self.stop:
            for length in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:length]):
                    hold = max(hold, length)
                    break
        return text[: len(text) - hold]

    def new_piece(self, final: bool = False) -> str:
        safe = self.safe_text(final)
        if len(safe) <= self.emitted:
            return ""
        piece, self.emitted = safe[self.emitted :], len(safe)
        return piece


class TextStream:
    """Iterate for text pieces as they are decided; `result` holds the finished sequence afterwards."""

    def __init__(self, pieces: Iterator[str]):
        self._pieces = pieces
        self.result: Decoded | None = None

    def __iter__(self) -> Iterator[str]:
        return self._pieces


def sample(
    start: StartFunction,
    request: TextRequest,
    tokenizer: Tokenizer,
    generator: torch.Generator | None,
    prompt_ids: Sequence[int] = (),
) -> TextStream:
    """Greedy or sampled decoding of one sequence, as a stream of text pieces."""
    stream = TextStream(iter(()))

    def pieces() -> Iterator[str]:
        tracker = _TextTracker(tokenizer, request.stop)
        session, logits = start(1)
        reason = "length"
        penalised = request.repetition_penalty != 1.0 or bool(_logit_hooks.get())  # who reads the history
        for _ in range(request.max_tokens):
            history = [list(prompt_ids) + tracker.ids] if penalised else [()]
            processed = next_token_distribution(logits, history, request, len(tracker.ids))
            token = choose_tokens(processed, request, [generator])[0]
            if token == EOS:
                reason = "eos"
                break
            if tracker.add(token):
                reason = "stop"
                break
            piece = tracker.new_piece()
            if piece:
                yield piece
            if len(tracker.ids) == request.max_tokens:
                break
            logits = session.advance(torch.tensor([token]))
        piece = tracker.new_piece(final=True)
        if piece:
            yield piece
        stream.result = Decoded(tracker.text, list(tracker.ids), reason)

    stream._pieces = pieces()
    return stream


def sample_batch(
    start: StartFunction,
    request: TextRequest,
    tokenizer: Tokenizer,
    generators: Sequence[torch.Generator],
    prompt_ids: Sequence[int] = (),
) -> list[Decoded]:
    """`len(generators)` sampled sequences decoded together as the rows of one session. Row i takes the
    same steps as `sample(..., generators[i])` alone (same processing, same draws; a finished row leaves the
    session through `reorder`), so its text is the same up to the float rounding of a batched forward."""
    trackers = [_TextTracker(tokenizer, request.stop) for _ in generators]
    reasons = ["length"] * len(generators)
    active = list(range(len(generators)))  # which sequence each row of the session holds
    session, logits = start(len(active))
    penalised = request.repetition_penalty != 1.0 or bool(_logit_hooks.get())  # who reads the history
    for step in range(request.max_tokens):
        history = [list(prompt_ids) + trackers[i].ids for i in active] if penalised else [()] * len(active)
        processed = next_token_distribution(logits, history, request, step)
        tokens = choose_tokens(processed, request, [generators[i] for i in active])
        kept = []
        for row, (index, token) in enumerate(zip(active, tokens)):
            if token == EOS:
                reasons[index] = "eos"
            elif trackers[index].add(token):
                reasons[index] = "stop"
            else:
                kept.append(row)
        if not kept or step == request.max_tokens - 1:
            break
        if len(kept) < len(active):  # finished rows leave the session
            session.reorder(torch.tensor(kept))
        active = [active[row] for row in kept]
        logits = session.advance(torch.tensor([tokens[row] for row in kept]))
    return [Decoded(t.text, list(t.ids), reason) for t, reason in zip(trackers, reasons)]


def sample_to_end(start: StartFunction, request: TextRequest, tokenizer: Tokenizer, generator, prompt_ids=()) -> Decoded:
    stream = sample(start, request, tokenizer, generator, prompt_ids)
    for _ in stream:
        pass
    assert stream.result is not None
    return stream.result


# ---------------------------------------------------------------------------------------------------------
# Beam search


def beam_search(
    start: StartFunction,
    request: TextRequest,
    tokenizer: Tokenizer,
    prompt_ids: Sequence[int] = (),
) -> list[Decoded]:
    """The `request.count` best of `request.num_beams` beams, best first.

    Scores are sums of log-probabilities (after the repetition penalty; temperature, top-k and top-p do
    not apply), compared as score / length**length_penalty. A beam that emits <eos> or a stop string is
    finished; search ends when `num_beams` beams are finished and the best running beam, scored at its
    current length, does not beat the worst of them (the usual heuristic; exact when length_penalty = 0,
    since log-probabilities only fall as a beam grows), or at max_tokens.
    """
    width = request.num_beams
    session, logits = start(width)
    # All beams start identical: only beam 0 may expand at the first step, or the k beams would be copies.
    beam_scores = torch.full((width,), float("-inf"))
    beam_scores[0] = 0.0
    beams: list[list[int]] = [[] for _ in range(width)]
    finished: list[Decoded] = []

    def normalised(score: float, length: int) -> float:
        return score / max(length, 1) ** request.length_penalty

    scoring = request.model_copy(update={"temperature": 0.0})  # beams score raw (penalised) log-probabilities
    for step in range(request.max_tokens):
        history = [list(prompt_ids) + beam for beam in beams]
        processed = next_token_distribution(logits, history, scoring, step)
        log_probs = processed.log_softmax(dim=-1)  # [width, vocab]
        candidates = (beam_scores[:, None] + log_probs).view(-1)
        top_scores, top_ids = torch.topk(candidates, min(2 * width, candidates.numel()))
        vocab = log_probs.shape[-1]
        next_rows, next_tokens, next_scores, next_beams = [], [], [], []
        for score, flat in zip(top_scores.tolist(), top_ids.tolist()):
            if score == float("-inf"):
                break
            row, token = divmod(flat, vocab)
            sequence = beams[row] + [token]
            if token == EOS:
                finished.append(Decoded(tokenizer.decode(beams[row]), beams[row], "eos", normalised(score, len(sequence))))
                continue
            if request.stop:
                tracker = _TextTracker(tokenizer, request.stop)
                tracker.ids = sequence[:-1]
                if tracker.add(token):
                    finished.append(Decoded(tracker.text, sequence, "stop", normalised(score, len(sequence))))
                    continue
            next_rows.append(row)
            next_tokens.append(token)
            next_scores.append(score)
            next_beams.append(sequence)
            if len(next_beams) == width:
                break
        if not next_beams:
            break
        best_running = max(normalised(s, len(b)) for s, b in zip(next_scores, next_beams))
        finished.sort(key=lambda d: d.score, reverse=True)
        if len(finished) >= width and best_running <= finished[width - 1].score:
            break
        if step == request.max_tokens - 1:
            for score, beam in zip(next_scores, next_beams):
                finished.append(Decoded(tokenizer.decode(beam), beam, "length", normalised(score, len(beam))))
            break
        # Fewer candidates than beams (a tiny vocabulary): repeat the last one with a -inf score.
        while len(next_beams) < width:
            next_rows.append(next_rows[-1])
            next_tokens.append(next_tokens[-1])
            next_scores.append(float("-inf"))
            next_beams.append(list(next_beams[-1]))
        session.reorder(torch.tensor(next_rows))
        beams, beam_scores = next_beams, torch.tensor(next_scores)
        logits = session.advance(torch.tensor(next_tokens))
    finished.sort(key=lambda d: d.score, reverse=True)
    return finished[: request.count]
