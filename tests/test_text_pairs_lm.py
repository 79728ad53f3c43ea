"""A language model on (source, target) pairs: prompt-formatted sequences with the loss on the target only
(aigc.data.text.PromptedPairs), fine-tuned from a parent GPT through the one loop, answering through the pipeline."""

from __future__ import annotations

import pytest
import torch

import aigc
from aigc.config import DataConfig, load_config
from aigc.data import load_dataset
from aigc.data.text import IGNORE, pair_prompt
from aigc.data.tokenizers import EOS, PAD, tokenizer_from_json
from aigc.errors import DataError
from aigc.generation.text import TextRequest
from aigc.loading import build_model
from aigc.models.text.common import token_losses
from helpers import train_tiny

PAIRS = [("red", "apple"), ("yellow", "banana"), ("green", "lime"), ("purple", "grape")] * 4 + [("orange", "orange")]


def pairs_file(tmp_path, pairs=PAIRS):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def gpt_pairs(tmp_path, pairs=PAIRS, val_fraction=0.0, **model):
    config = load_config("gpt-tiny", [f"model.{k}={v!r}" for k, v in model.items()]).model
    return load_dataset(DataConfig(name="text-pairs", path=str(pairs_file(tmp_path, pairs)), val_fraction=val_fraction), config)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_a_pair_is_prompt_then_target_and_only_the_target_is_learnt(tmp_path, kind):
    data = gpt_pairs(tmp_path, tokenizer_kind=kind, max_vocab=300)
    tokenizer = tokenizer_from_json(data.model_settings["tokenizer"])
    batch = data.train.get_batch(torch.tensor([0, 1]))  # "red" -> "apple", "yellow" -> "banana"
    assert batch["inputs"].shape == batch["targets"].shape
    for row, (source, target) in enumerate(PAIRS[:2]):
        prompt = tokenizer.encode(pair_prompt(source))  # what generation encodes: the same ids as the training prompt
        sequence = prompt + tokenizer.encode(target) + [EOS]
        inputs, targets = batch["inputs"][row].tolist(), batch["targets"][row].tolist()
        assert inputs[: len(sequence) - 1] == sequence[:-1]
        assert set(inputs[len(sequence) - 1 :]) <= {PAD}  # the shorter row is padded
        learnt = [t for t in targets if t != IGNORE]
        assert learnt == tokenizer.encode(target) + [EOS]  # the target and its end, nothing of the prompt
        assert targets[: len(prompt) - 1] == [IGNORE] * (len(prompt) - 1)


def test_a_long_pair_keeps_the_end_of_its_source_and_the_start_of_its_target(tmp_path):
    source, target = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    data = gpt_pairs(tmp_path, pairs=[(source, target)], context_length=16)  # target keeps 8, the source the rest
    tokenizer = tokenizer_from_json(data.model_settings["tokenizer"])
    batch = data.train.get_batch(torch.tensor([0]))
    assert batch["inputs"].shape[1] == 16
    assert tokenizer.decode(batch["inputs"][0].tolist()) == "uvwxyz\n\nABCDEFGH"  # 6 + 2 + 8: the last target, <eos>, is not an input
    assert tokenizer.decode([t for t in batch["targets"][0].tolist() if t not in (IGNORE, EOS)]) == "ABCDEFGH"


def test_the_loss_counts_target_tokens_only(tmp_path):
    data = gpt_pairs(tmp_path)
    run_config = load_config("gpt-tiny", [f"model.{k}={v!r}" for k, v in data.model_settings.items() if k != "preview_prompt"])
    model = build_model(run_config)
    batch = data.train.get_batch(torch.arange(4))
    (_, loss, _), = model.training_step(batch)
    logits = model(batch["inputs"])
    learnt = batch["targets"] != IGNORE
    by_hand = torch.nn.functional.cross_entropy(logits[learnt], batch["targets"][learnt])
    assert torch.allclose(loss, by_hand)
    total, count = token_losses(logits, batch["targets"])
    assert count == sum(len(t) + 1 for _, t in PAIRS[:4])  # each target's characters and its <eos>


def test_a_gpt_fine_tuned_on_pairs_answers_through_the_pipeline(tmp_path):
    parent = train_tiny("gpt", tmp_path / "parent", "model.context_length=32")  # tiny-text: a parent pretrained on text
    words = [("Shall", "summer"), ("Romeo", "Juliet"), ("heaven", "shines"), ("Death", "shade")]
    path = pairs_file(tmp_path, words * 8)
    child = train_tiny(
        "gpt", tmp_path / "child", f"train.init_from={str(parent.run_dir)!r}", "model.context_length=32", "data.name='text-pairs'",
        f"data.path={str(path)!r}", "data.val_fraction=0", "train.max_steps=300", "train.batch_size=16", "optim.lr=0.01",
        "train.eval_every=0",
    )
    model = aigc.load(child.run_dir)
    for source, target in words:
        sample = model.generate(TextRequest(prompt=pair_prompt(source), max_tokens=12, temperature=0.0))
        assert sample.text == target and sample.finish_reasons == ["eos"]


def test_pairs_are_refused_by_a_model_that_reads_neither_pairs_nor_text(tmp_path):
    with pytest.raises(DataError, match="seq2seq or language-model family"):
        load_dataset(DataConfig(name="tiny-pairs"), load_config("captioner-tiny").model)
