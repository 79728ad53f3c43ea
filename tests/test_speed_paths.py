"""The fast paths give what the slow reference paths give: batched sampling (count > 1 as rows of one
session) draws the same tokens as one sample at a time, the multinomial written out equals
torch.multinomial, incremental text decoding equals decoding everything, and the KV-cache decode step
equals recomputing the context."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import aigc
from aigc.data.tokenizers import EOS, NUM_SPECIAL
from aigc.generation import decoding
from aigc.generation.text import TextRequest
from tests.test_text_decoding import TOKENIZER, ids, starter


def test_choose_tokens_draws_what_torch_multinomial_draws_per_row():
    logits = torch.randn(6, 300) * 3
    request = TextRequest(prompt="", temperature=1.0)
    for seed in range(20):
        generators = [torch.Generator().manual_seed(seed * 10 + row) for row in range(6)]
        references = [torch.Generator().manual_seed(seed * 10 + row) for row in range(6)]
        batched = decoding.choose_tokens(logits, request, generators)
        alone = [int(torch.multinomial(logits[row].softmax(-1), 1, generator=references[row])) for row in range(6)]
        assert batched == alone
        # and each generator advanced exactly as far, so later draws agree too
        assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(generators, references))


def test_sample_batch_equals_samples_one_at_a_time_with_rows_finishing_early():
    # Uniform next tokens over a few letters and <eos>: rows end at different steps (eos, stop, length).
    a, b, c, space = ids("abc ")
    start = starter({}, {a: 0.3, b: 0.3, c: 0.15, space: 0.15, EOS: 0.1})
    request = TextRequest(prompt="", temperature=1.0, max_tokens=12, stop=["c "], count=8)
    reasons = set()
    for seed in range(5):
        batched = decoding.sample_batch(start, request, TOKENIZER, [torch.Generator().manual_seed(seed + i) for i in range(8)])
        alone = [decoding.sample_to_end(start, request, TOKENIZER, torch.Generator().manual_seed(seed + i)) for i in range(8)]
        assert batched == alone
        reasons |= {d.finish_reason for d in batched}
    assert reasons == {"eos", "stop", "length"}


@pytest.fixture(scope="module")
def shakespeare():
    return aigc.load("gpt-shakespeare")


def test_gpt_batched_count_gives_the_texts_of_single_seeds(shakespeare):
    model = shakespeare.module
    request = TextRequest(prompt="ROMEO:", max_tokens=60, temperature=0.8, top_k=200, count=4, seed=7)
    batched = model.generate(request)
    for i in range(4):
        alone = model.generate(request.model_copy(update={"count": 1, "seed": 7 + i}))
        assert batched.texts[i] == alone.texts[0]
        assert batched.token_counts[i] == alone.token_counts[0]
        assert batched.seeds[i] == 7 + i


def test_batched_count_under_the_default_policy_with_its_text_watermark(shakespeare):
    """The watermark's logit hook reads each row's history: batched rows must see their own."""
    from aigc.generation.pipeline import generate
    from aigc.safety import default_policy

    policy = default_policy()
    assert policy.logits  # the text watermark is on
    request = TextRequest(prompt="JULIET:", max_tokens=40, temperature=0.8, top_k=200, count=3, seed=11, repetition_penalty=1.2)
    batched = generate(shakespeare.module, request, info=shakespeare.info, policy=policy)
    for i in range(3):
        alone = generate(shakespeare.module, request.model_copy(update={"count": 1, "seed": 11 + i}), info=shakespeare.info, policy=policy)
        assert batched.texts[i] == alone.texts[0]


def test_gpt_cached_decoding_equals_the_recomputing_reference(shakespeare):
    # 150 tokens with a 128-token context: the context slides once on the way.
    request = TextRequest(prompt="KING:", max_tokens=150, temperature=0.8, top_k=50, top_p=0.95, seed=3, stop_at_eos=False)
    fast = shakespeare.module.generate(request)
    slow = shakespeare.module.generate(request, use_cache=False)
    assert fast.texts == slow.texts and fast.token_counts == [150]


class _ShiftedLinear(torch.nn.Linear):
    """A Linear subclass that computes something else (as a LoRA or int8 layer swapped in does)."""

    def forward(self, x):
        return super().forward(x) + 0.5


@pytest.mark.parametrize("overrides", [(), ("model.bias=true", "model.positions=sinusoidal")])
def test_gpt_decode_step_equals_the_forward_pass_for_every_row(overrides):
    from tests.test_text_models import built

    model, _ = built("gpt-tiny", *overrides)
    model.blocks[0].mlp.fc.__class__ = _ShiftedLinear  # must be called as its module, not as plain weights
    prompts = torch.randint(4, model.config.vocab_size, (3, 5))
    with torch.inference_mode():
        session, _ = model.start_decoding(prompts[0].tolist(), rows=3)
        session.context = prompts  # three different prompts, one per row
        session.prefill()
        assert session.step is not None
        tokens = prompts
        for _ in range(8):
            new = torch.randint(4, model.config.vocab_size, (3,))
            tokens = torch.cat([tokens, new[:, None]], dim=1)
            stepped = session.advance(new)
            torch.testing.assert_close(stepped, model(tokens)[:, -1], rtol=1e-4, atol=1e-5)


def test_gpt_decode_step_gives_the_texts_of_the_forward_path_it_replaced(shakespeare):
    """Same text for a seed: the zoo model's samples through DecodeStep equal those through GPT.forward
    with the KV cache (the session without its step), across a context slide."""
    model = shakespeare.module
    ids = model.prompt_ids("ROMEO:")

    def through_forward(rows):
        session, logits = model.start_decoding(ids, rows)
        session.step = None
        return session, logits

    with torch.inference_mode():
        for seed in range(4):
            request = TextRequest(prompt="ROMEO:", max_tokens=200, temperature=0.8, top_k=200, stop_at_eos=False, seed=seed)
            reference = decoding.sample_to_end(through_forward, request, model.tokenizer, torch.Generator().manual_seed(seed), ids)
            assert model.generate(request).texts == [reference.text]


def test_incremental_decoding_equals_decoding_all_ids_for_byte_bpe(shakespeare):
    tokenizer = shakespeare.module.tokenizer
    text = "Ay, señor — 你好, 'tis naïve ☃ ok"
    byte_ids = tokenizer.encode(text)
    rng = random.Random(0)
    for _ in range(20):
        sequence = byte_ids + [rng.randrange(NUM_SPECIAL, tokenizer.vocab_size) for _ in range(30)]
        tracker = decoding._TextTracker(tokenizer, stop=[])
        for token in sequence:
            tracker.add(token)
            assert tracker.text == tokenizer.decode(tracker.ids)


@pytest.fixture(scope="module")
def digits():
    return aigc.load("t2i-diffusion-mnist")


def _images(loaded, **options):
    from aigc.generation.pipeline import generate

    request = loaded.module.request_class(prompt="a handwritten seven", guidance=3.0, **options)
    return generate(loaded.module, request, info=loaded.info).images


def test_dpm_solver_follows_prompts_in_10_steps(digits):
    from aigc.metrics.prompt_accuracy import prompt_accuracy

    report = prompt_accuracy(digits, languages=["en"], samples_per_prompt=1, sampler="dpmpp-2m", sample_steps=10, guidance=3.0)
    assert report["images"] == 40 and report["accuracy"] >= 0.95
    assert report["protocol"]["request_options"]["sampler"] == "dpmpp-2m"


def test_dpm_solver_images_are_seeded_per_image(digits):
    batch = _images(digits, count=3, seed=5, sampler="dpmpp-2m", sample_steps=10)
    again = _images(digits, count=3, seed=5, sampler="dpmpp-2m", sample_steps=10)
    alone = _images(digits, count=1, seed=6, sampler="dpmpp-2m", sample_steps=10)
    assert np.array_equal(batch, again)
    assert np.abs(batch[1].astype(int) - alone[0].astype(int)).max() <= 1  # batched convs may round differently


def test_bf16_sampling_stays_close_to_fp32(digits):
    config = digits.module.config
    fp32 = _images(digits, count=4, seed=0, sampler="dpmpp-2m", sample_steps=10)
    config.sample_precision = "bf16"
    try:
        bf16 = _images(digits, count=4, seed=0, sampler="dpmpp-2m", sample_steps=10)
    finally:
        config.sample_precision = "fp32"
    difference = np.abs(fp32.astype(float) - bf16.astype(float))
    assert 0 < difference.mean() < 6  # of 255: bf16 really ran, and drew the same digits


@pytest.mark.parametrize("family", ["lstm", "seq2seq", "transformer-seq2seq"])
def test_every_text_family_batches_count_with_the_texts_of_single_seeds(family, tmp_path):
    from tests.helpers import train_tiny

    model = aigc.load(train_tiny(family, tmp_path / "run", "train.max_steps=3").run_dir).module
    request = model.request_class(prompt="ab", max_tokens=25, temperature=1.0, count=4, seed=2)
    batched = model.generate(request)
    alone = [model.generate(request.model_copy(update={"count": 1, "seed": 2 + i})).texts[0] for i in range(4)]
    assert batched.texts == alone
