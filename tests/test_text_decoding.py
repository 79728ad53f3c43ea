"""Decoding math and behaviour on hand-made logits: top-k, top-p, repetition penalty, greedy, seeded
sampling, stop strings, streaming and beam search (including a case where greedy is not the best)."""

from __future__ import annotations

import math

import pytest
import torch

from aigc.errors import AigcError
from aigc.generation import decoding
from aigc.generation.text import TextRequest
from aigc.data.tokenizers import BOS, EOS, NUM_SPECIAL, PAD, UNK, CharTokenizer

TOKENIZER = CharTokenizer.train("abcdefgh ")  # ids: 4 ' ', 5 a, 6 b, ..., 12 h


def ids(text: str) -> list[int]:
    return TOKENIZER.encode(text)


class TableSession:
    """A fake model: the next-token log-probabilities depend only on the text so far, from a table."""

    def __init__(self, table, rows: int, default):
        self.table, self.default = table, default
        self.sequences = [[] for _ in range(rows)]

    def logits(self) -> torch.Tensor:
        out = torch.full((len(self.sequences), TOKENIZER.vocab_size), -30.0)
        for row, sequence in enumerate(self.sequences):
            for token_id, prob in self.table.get(TOKENIZER.decode(sequence), self.default).items():
                out[row, token_id] = math.log(prob)
        return out

    def advance(self, tokens):
        for row, token in enumerate(tokens.tolist()):
            self.sequences[row].append(token)
        return self.logits()

    def reorder(self, rows):
        self.sequences = [list(self.sequences[r]) for r in rows.tolist()]


def starter(table, default):
    def start(rows):
        session = TableSession(table, rows, default)
        return session, session.logits()

    return start


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5]])
    kept = decoding.apply_top_k(logits, 2)
    assert torch.isfinite(kept).tolist() == [[False, True, True, False]]
    assert torch.equal(decoding.apply_top_k(logits, None), logits)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probabilities = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probabilities.log()
    assert torch.isfinite(decoding.apply_top_p(logits, 0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(decoding.apply_top_p(logits, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(decoding.apply_top_p(logits, 0.1)).tolist() == [[True, False, False, False]]  # top one stays
    shuffled = logits[:, [2, 0, 3, 1]]
    assert torch.isfinite(decoding.apply_top_p(shuffled, 0.8)).tolist() == [[False, True, False, True]]


def test_repetition_penalty_follows_ctrl():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = decoding.apply_repetition_penalty(logits.clone(), [[0, 1]], 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]  # positive divided, negative multiplied, unseen unchanged


def test_special_tokens_are_never_sampled():
    logits = torch.zeros(1, TOKENIZER.vocab_size)
    logits[0, [PAD, BOS, UNK]] = 100.0
    processed = decoding.next_token_distribution(logits, [[]], TextRequest(temperature=0))
    assert int(processed.argmax()) not in (PAD, BOS, UNK)
    no_eos = decoding.next_token_distribution(logits, [[]], TextRequest(stop_at_eos=False))
    assert no_eos[0, EOS] == float("-inf")


def test_greedy_and_seeded_sampling():
    uniform = {i: 1 / 8 for i in range(NUM_SPECIAL + 1, NUM_SPECIAL + 9)}
    start = starter({}, uniform | {ids("a")[0]: 0.3})
    greedy = decoding.sample_to_end(start, TextRequest(temperature=0, max_tokens=5), TOKENIZER, None)
    assert greedy.text == "aaaaa" and greedy.finish_reason == "length" and len(greedy.token_ids) == 5
    draw = lambda seed: decoding.sample_to_end(start, TextRequest(max_tokens=30), TOKENIZER, torch.Generator().manual_seed(seed)).text
    assert draw(1) == draw(1) and draw(1) != draw(2)
    top1 = decoding.sample_to_end(start, TextRequest(max_tokens=4, top_k=1), TOKENIZER, torch.Generator().manual_seed(3))
    assert top1.text == "aaaa"


def test_eos_and_stop_strings_end_the_text():
    table = {"": {ids("a")[0]: 1.0}, "a": {ids("b")[0]: 1.0}, "ab": {ids("c")[0]: 1.0}, "abc": {EOS: 1.0}}
    start = starter(table, {EOS: 1.0})
    done = decoding.sample_to_end(start, TextRequest(temperature=0), TOKENIZER, None)
    assert (done.text, done.finish_reason) == ("abc", "eos")
    stopped = decoding.sample_to_end(start, TextRequest(temperature=0, stop=["bc"]), TOKENIZER, None)
    assert (stopped.text, stopped.finish_reason) == ("a", "stop")
    ignoring = decoding.sample_to_end(start, TextRequest(temperature=0, stop_at_eos=False, max_tokens=5), TOKENIZER, None)
    assert ignoring.finish_reason == "length" and ignoring.text.startswith("abc")


def test_streaming_yields_the_final_text_and_holds_back_a_possible_stop_string():
    order = "abcabcabd"
    table = {order[:i]: {ids(order[i])[0]: 1.0} for i in range(len(order))}
    start = starter(table, {EOS: 1.0})
    stream = decoding.sample(start, TextRequest(temperature=0, stop=["abd"]), TOKENIZER, None)
    pieces = list(stream)
    assert "".join(pieces) == stream.result.text == "abcabc"
    assert stream.result.finish_reason == "stop"
    # Each piece was emitted only once it could no longer be the start of "abd".
    assert all("abd" not in "".join(pieces[: i + 1]) for i in range(len(pieces)))


def test_beam_search_finds_a_better_sequence_than_greedy():
    a, b, c = ids("a")[0], ids("b")[0], ids("c")[0]
    # Greedy takes "a" (0.6) then faces a flat 1/3 choice: best path probability 0.6 * 0.34 = 0.204.
    # "b" (0.4) is followed by "c" with 0.9: 0.36. Beam search with two beams finds "bc".
    table = {
        "": {a: 0.6, b: 0.4},
        "a": {a: 0.34, b: 0.33, c: 0.33},
        "b": {c: 0.9, a: 0.1},
    }
    start = starter(table, {EOS: 1.0})
    greedy = decoding.sample_to_end(start, TextRequest(temperature=0, max_tokens=4), TOKENIZER, None)
    assert greedy.text == "aa"
    best = decoding.beam_search(start, TextRequest(num_beams=2, max_tokens=4, length_penalty=0.0), TOKENIZER)
    assert best[0].text == "bc" and best[0].finish_reason == "eos"
    assert best[0].score == pytest.approx(math.log(0.4 * 0.9 * 1.0), abs=1e-4)
    two = decoding.beam_search(start, TextRequest(num_beams=3, count=2, max_tokens=4, length_penalty=0.0), TOKENIZER)
    assert [d.text for d in two] == ["bc", "aa"] and two[0].score >= two[1].score


def test_beam_search_is_limited_by_max_tokens():
    start = starter({}, {ids("a")[0]: 0.9, ids("b")[0]: 0.1})
    beams = decoding.beam_search(start, TextRequest(num_beams=2, count=2, max_tokens=3), TOKENIZER)
    assert beams[0].text == "aaa" and beams[0].finish_reason == "length"
    assert all(len(d.token_ids) == 3 for d in beams)


def test_request_validation():
    with pytest.raises(ValueError):
        TextRequest(top_p=0)
    with pytest.raises(ValueError):
        TextRequest(stop=[""])
    with pytest.raises(ValueError):
        TextRequest(max_tokens=0)
    assert TextRequest(temperature=0).greedy and TextRequest(top_k=1).greedy and not TextRequest().greedy


def test_more_texts_than_beams_is_an_error(tmp_path):
    from helpers import train_tiny

    import aigc

    model = aigc.load(train_tiny("gru", tmp_path / "run").run_dir)
    with pytest.raises(AigcError, match="num_beams"):
        model.generate(TextRequest(num_beams=2, count=3))
    with pytest.raises(AigcError, match="one sampled text"):
        model.stream(TextRequest(count=2))


def test_streaming_holds_back_a_character_until_all_its_bytes_have_come():
    from conftest import has_module, require

    require(has_module("tokenizers"), "the tokenizers package (pip install tokenizers)")
    from aigc.data.tokenizers import BPETokenizer

    bpe = BPETokenizer.train("x" * 10, 260 + NUM_SPECIAL)  # no merges that matter: "明月" is six byte tokens
    tokens = bpe.encode("明月")
    assert len(tokens) == 6
    class ByteSession(TableSession):
        """Emits the six byte tokens of "明月" in order, then <eos>."""

        def logits(self):
            out = torch.full((len(self.sequences), bpe.vocab_size), -30.0)
            for row, sequence in enumerate(self.sequences):
                step = len(sequence)
                out[row, tokens[step] if step < len(tokens) else EOS] = 0.0
            return out

    def start(rows):
        session = ByteSession({}, rows, {})
        return session, session.logits()

    stream = decoding.sample(start, TextRequest(temperature=0), bpe, None)
    pieces = list(stream)
    assert pieces == ["明", "月"] and stream.result.finish_reason == "eos"


def test_min_tokens_holds_back_eos_in_sampling_and_in_beam_search():
    """A weak model that gives <eos> 0.6 at once: beam search returns the empty text (log 0.6 beats any
    continuation) unless min_tokens holds <eos> back; afterwards <eos> is allowed again."""
    a = ids("a")[0]
    start = starter({}, {EOS: 0.6, a: 0.4})
    empty = decoding.beam_search(start, TextRequest(num_beams=2, max_tokens=5), TOKENIZER)
    assert empty[0].text == "" and empty[0].finish_reason == "eos"
    held = decoding.beam_search(start, TextRequest(num_beams=2, max_tokens=5, min_tokens=2), TOKENIZER)
    assert held[0].text == "aa" and held[0].finish_reason == "eos"
    greedy = decoding.sample_to_end(start, TextRequest(temperature=0, min_tokens=3), TOKENIZER, None)
    assert (greedy.text, greedy.finish_reason) == ("aaa", "eos")
    with pytest.raises(ValueError, match="min_tokens"):
        TextRequest(max_tokens=3, min_tokens=4)
