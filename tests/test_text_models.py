"""Text families beyond the registry-generated tests: the GPT's KV cache gives the same tokens as full
recomputation, causality, exact split evaluation, beam search on seq2seq models, user text through a
preset, resume, and the sample files the loop writes."""

from __future__ import annotations

import json
import math

import pytest
import torch

import aigc
from aigc.config import load_config
from aigc.data import load_dataset
from aigc.generation.text import TextRequest
from aigc.models.layers import sinusoidal_embedding
from aigc.models.text.common import evaluate_split
from aigc.training.loop import _fill_from_data, build_model
from helpers import assert_same_tensors, train_tiny, weights


def built(preset: str, *overrides: str):
    config = load_config(preset, list(overrides))
    data = load_dataset(config.data, config.model)
    _fill_from_data(config, data)
    torch.manual_seed(0)
    return build_model(config).eval(), data


def test_sinusoidal_positions_follow_the_papers_formula_and_timesteps_put_cosines_first():
    # One function serves the transformers' position tables and the U-Net's timestep embedding; each
    # layout is checked against its formula in float64 (Vaswani et al. 2017, §3.5).
    length, dim = 50, 16
    position = torch.arange(length, dtype=torch.float64)[:, None]
    angles = position / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))  # [L, d/2]
    table = sinusoidal_embedding(torch.arange(length), dim, interleave=True)
    torch.testing.assert_close(table[:, 0::2].double(), torch.sin(angles), rtol=0, atol=2e-5)
    torch.testing.assert_close(table[:, 1::2].double(), torch.cos(angles), rtol=0, atol=2e-5)
    timesteps = sinusoidal_embedding(torch.arange(length), dim)
    torch.testing.assert_close(timesteps.double(), torch.cat([torch.cos(angles), torch.sin(angles)], dim=1), rtol=0, atol=2e-5)
    assert sinusoidal_embedding(torch.arange(3), 7).shape == (3, 7)  # an odd dim: one zero column
    assert torch.equal(sinusoidal_embedding(torch.arange(3), 7)[:, 6], torch.zeros(3))


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_gpt_kv_cache_matches_full_recomputation(positions):
    model, _ = built("gpt-tiny", f"model.positions={positions}")
    prompt = model.tokenizer.encode("Shall")
    with torch.no_grad():
        # Step by step with the cache == the last position of a full forward pass.
        session, logits = model.start_decoding(prompt, rows=1)
        tokens = list(prompt)
        for token in model.tokenizer.encode(" thee to"):
            tokens.append(token)
            logits = session.advance(torch.tensor([token]))
            full = model(torch.tensor([tokens]))[:, -1]
            torch.testing.assert_close(logits, full, rtol=1e-4, atol=1e-5)
    # Generation past the 16-token context slides the same way with and without the cache.
    request = TextRequest(prompt="Shall I", max_tokens=40, seed=3)
    cached = model.generate(request, use_cache=True)
    uncached = model.generate(request, use_cache=False)
    assert cached.texts == uncached.texts and cached.token_counts[0] == 40


def test_gpt_is_causal():
    model, _ = built("gpt-tiny")
    inputs = torch.randint(4, model.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(0))
    changed = inputs.clone()
    changed[0, 8] = (changed[0, 8] + 1 - 4) % (model.config.vocab_size - 4) + 4
    with torch.no_grad():
        a, b = model(inputs), model(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_weight_tying_shares_one_matrix():
    model, _ = built("gpt-tiny")
    assert model.output.weight is model.token_embedding.weight
    rnn, _ = built("lstm-tiny", "model.hidden_size=24")
    assert rnn.output.weight is rnn.embedding.weight and rnn.projection is not None
    untied, _ = built("lstm-tiny", "model.tie_weights=false")
    assert untied.output.weight is not untied.embedding.weight


def test_evaluate_split_scores_every_validation_token():
    model, data = built("gpt-tiny")
    result = evaluate_split(model, data.val, batch_size=2)
    assert result["tokens"] == data.val.target_count
    # An untrained model is close to uniform over the vocabulary.
    assert abs(result["loss_per_token"] - math.log(model.config.vocab_size)) < 0.5
    assert result["bpc"] == pytest.approx(result["nats_per_char"] / math.log(2))


@pytest.mark.parametrize("family", ["seq2seq", "transformer-seq2seq"])
def test_seq2seq_learns_the_tiny_task_and_beam_searches(family, tmp_path):
    result = train_tiny(family, tmp_path / "run", "train.max_steps=60", "optim.lr=1e-2", "train.eval_every=60")
    model = aigc.load(result.run_dir)
    assert math.isfinite(result.metrics["val/loss"]) and 0 <= result.metrics["val/token_accuracy"] <= 1
    sample = model.generate(TextRequest(prompt="床前明月光，疑是地上霜。", num_beams=3, count=2, max_tokens=12))
    assert len(sample.texts) == 2 and sample.finish_reasons[0] in ("eos", "length")
    # Training text is learned: teacher-forced loss on the training pairs fell well below uniform.
    assert result.metrics["loss/model"] < math.log(model.module.config.vocab_size) - 1.0
    preview = (result.run_dir / "samples")
    assert any(preview.glob("*.txt"))


def test_scheduled_sampling_trains(tmp_path):
    for family in ("seq2seq", "transformer-seq2seq"):
        result = train_tiny(family, tmp_path / family, "model.scheduled_sampling=0.5")
        assert math.isfinite(result.metrics["loss/model"])


def test_a_preset_trains_on_the_users_text_file_and_resumes_exactly(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("落霞与孤鹜齐飞，秋水共长天一色。\n" * 20 + "To be, or not to be.\n" * 20, encoding="utf-8")
    straight = train_tiny("gpt", tmp_path / "straight", f"data.path={json.dumps(str(text))}", "data.name=text", "train.max_steps=4", "train.checkpoint_every=2")
    half = train_tiny("gpt", tmp_path / "resumed", f"data.path={json.dumps(str(text))}", "data.name=text", "train.max_steps=2")
    resumed = aigc.train(resume=half.run_dir, max_steps=4)
    assert resumed.step == 4
    assert_same_tensors(weights(straight.checkpoint), weights(resumed.checkpoint))
    model = aigc.load(straight.run_dir)
    assert model.module.tokenizer.decode(model.module.tokenizer.encode("秋水共长天一色")) == "秋水共长天一色"
    sample = model.generate(TextRequest(prompt="落霞", max_tokens=8, seed=0))
    assert sample.token_counts[0] <= 8


def test_sample_files_carry_their_settings(tmp_path):
    result = train_tiny("gru", tmp_path / "run")
    sample = aigc.load(result.run_dir).generate(TextRequest(prompt="ROMEO:", count=2, max_tokens=10, seed=5, top_k=5))
    path = sample.save(tmp_path / "out" / "sample.txt")
    record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert record["seeds"] == [5, 6] and record["parameters"]["top_k"] == 5 and record["prompt"] == "ROMEO:"
    assert record["texts"] == sample.texts and path.read_text(encoding="utf-8").startswith(sample.texts[0])
    each = sample.save_each(tmp_path / "each")
    assert [p.name for p in each] == ["sample-seed5.txt", "sample-seed6.txt"]


def test_a_bpe_model_with_ema_weights_trains_saves_and_generates_chinese(tmp_path):
    result = train_tiny("gpt", tmp_path / "run", "model.tokenizer_kind=bpe", "model.max_vocab=300", "train.ema_decay=0.9")
    model = aigc.load(result.run_dir)  # EMA weights
    assert model.info.weights == "ema" and model.module.tokenizer.kind == "bpe"
    text = "床前明月光，疑是地上霜。🙂"
    assert model.module.tokenizer.decode(model.module.tokenizer.encode(text)) == text
    pieces = list(model.stream(TextRequest(prompt="床前", max_tokens=12, seed=2)))
    assert "".join(pieces) == model.generate(TextRequest(prompt="床前", max_tokens=12, seed=2)).text
    final = "".join(pieces)
    # Nothing emitted is ever taken back: a half-decoded character (bytes still to come) is held back.
    assert all(final.startswith("".join(pieces[: k + 1])) for k in range(len(pieces)))
