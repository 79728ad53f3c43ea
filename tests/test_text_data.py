"""Text data: the validation split is the last characters, windows and chunks cover the text exactly,
bad files fail with clear errors, pairs files parse, and the prepared corpora are exactly as specified."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from aigc.config import DataConfig, load_config
from aigc.data import load_dataset
from aigc.data.prepare import is_prepared
from aigc.data.prepare import shakespeare as shakespeare_corpus
from aigc.data.prepare import tang as tang_corpus
from aigc.data.text import IGNORE, TINY_TEXT, split_text, tiny_pairs
from aigc.errors import DataError
from aigc.data.tokenizers import BOS, EOS, PAD, tokenizer_from_json
from conftest import require


def gpt_model_config(**changes):
    return load_config("gpt-tiny", [f"model.{k}={v}" for k, v in changes.items()]).model


def bundle(text_path: Path | None = None, name: str = "text", val_fraction: float = 0.1, limit=None, **model):
    data = DataConfig(name=name, path=None if text_path is None else str(text_path), val_fraction=val_fraction, limit=limit)
    return load_dataset(data, gpt_model_config(**model))


def test_validation_is_the_last_fraction_of_characters():
    train, val = split_text("0123456789", 0.3)
    assert (train, val) == ("0123456", "789")
    assert split_text("abc", 0.0) == ("abc", "")


def test_windows_are_random_starts_and_chunks_cover_every_token_once():
    data = bundle(name="tiny-text")
    tokenizer = tokenizer_from_json(data.model_settings["tokenizer"])
    assert data.model_settings["vocab_size"] == tokenizer.vocab_size
    context = 16
    train_text, val_text = split_text(TINY_TEXT, 0.1)
    assert len(data.train) == len(tokenizer.encode(train_text)) - context
    batch = data.train.get_batch(torch.tensor([0, 5]))
    assert batch["inputs"].shape == batch["targets"].shape == (2, context)
    assert torch.equal(batch["inputs"][1, 1:], batch["targets"][1, :-1])  # targets are inputs shifted by one
    assert tokenizer.decode(batch["inputs"][0].tolist()) == train_text[:context]
    # Validation: every token after the first is a target exactly once, in order; padding is ignored.
    val_ids = tokenizer.encode(val_text)
    batch = data.val.get_batch(torch.arange(len(data.val)))
    targets = batch["targets"].reshape(-1)
    assert targets[targets != IGNORE].tolist() == val_ids[1:]
    assert data.val.characters == len(val_text)


def test_the_data_fills_the_model_config_and_a_model_keeps_its_tokenizer(tmp_path):
    data = bundle(name="tiny-text")
    file = tmp_path / "other.txt"
    file.write_text("zzzz " * 100, encoding="utf-8")
    kept = bundle(file, tokenizer=json.dumps(data.model_settings["tokenizer"]))  # a resumed / fine-tuned model
    assert kept.model_settings["tokenizer"] == data.model_settings["tokenizer"]


def test_a_folder_is_its_text_files_sorted_and_joined(tmp_path):
    (tmp_path / "b.txt").write_text("second " * 30, encoding="utf-8")
    (tmp_path / "a.txt").write_text("first " * 30, encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    data = bundle(tmp_path, val_fraction=0.0)
    tokenizer = tokenizer_from_json(data.model_settings["tokenizer"])
    assert tokenizer.decode(data.train.tokens.tolist()) == "first " * 30 + "\n\n" + "second " * 30
    assert data.val is None and "2 text files" in data.source


def test_bad_text_files_have_clear_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        bundle(empty)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café au lait\n".encode("utf-8") * 20 + "naïve".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xEF at offset 282 \(line 21\)") as error:
        bundle(latin)
    assert "iconv" in str(error.value)
    short = tmp_path / "short.txt"
    short.write_text("too short", encoding="utf-8")
    with pytest.raises(DataError, match="fewer than one window"):
        bundle(short)
    with pytest.raises(DataError, match="does not exist"):
        bundle(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="data.path"):
        bundle(None)
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="no text files"):
        bundle(tmp_path / "sub")


def test_a_utf8_byte_order_mark_is_not_text(tmp_path):
    file = tmp_path / "bom.txt"
    file.write_bytes(b"\xef\xbb\xbf" + "床前明月光，疑是地上霜。".encode("utf-8") * 10)
    data = bundle(file, val_fraction=0.0)
    assert tokenizer_from_json(data.model_settings["tokenizer"]).decode(data.train.tokens[:5].tolist()) == "床前明月光"


def test_pair_files_and_batches(tmp_path):
    config = load_config("seq2seq-tiny").model
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("hello\tworld\nhow are you\tfine\n\nbye\tsee you\n", encoding="utf-8")
    data = load_dataset(DataConfig(name="text-pairs", path=str(tsv), val_fraction=0.34), config)
    assert len(data.train) == 2 and len(data.val) == 1
    batch = data.train.get_batch(torch.tensor([0, 1]))
    assert batch["source"][1, -1] == EOS  # the longest source in the batch ends with <eos>, unpadded
    assert batch["target"][:, 0].tolist() == [BOS, BOS]
    assert (batch["source"][0] == PAD).any()  # "hello" is shorter than "how are you": padded
    tokenizer = tokenizer_from_json(data.model_settings["tokenizer"])
    assert tokenizer.decode(batch["target"][1].tolist()) == "fine"
    assert data.model_settings["preview_prompt"] == "bye"
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"source": "a b", "target": "c"}\n{"oops": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        load_dataset(DataConfig(name="text-pairs", path=str(jsonl)), config)
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match="source<TAB>target"):
        load_dataset(DataConfig(name="text-pairs", path=str(bad)), config)


def test_language_model_data_refuses_a_seq2seq_model():
    # (Pairs go to a language model as prompt-formatted sequences: tests/test_text_pairs_lm.py.)
    with pytest.raises(DataError, match="language models"):
        load_dataset(DataConfig(name="tiny-text"), load_config("seq2seq-tiny").model)


def test_tiny_pairs_are_consecutive_lines():
    pairs = tiny_pairs()
    assert ("床前明月光，疑是地上霜。", "举头望明月，低头思故乡。") in pairs
    assert all("\n" not in source + target for source, target in pairs)


# ------------------------------------------------------------------------------------------ corpora


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_wrong_shakespeare_archive_is_refused(tmp_path):
    archive = _tarball(tmp_path / "fake.tar.gz", {f"{shakespeare_corpus.TEXTS_PREFIX}play{i}_gut.txt": b"x" for i in range(3)})
    with pytest.raises(DataError, match="holds 3 .* expected 42"):
        shakespeare_corpus.read_works(archive)
    works = [(f"p{i}_gut.txt", "A") for i in range(42)]
    with pytest.raises(DataError, match="expected 5,057,280"):
        shakespeare_corpus.complete_works(works)


def test_dialogue_turns_pair_speakers_within_a_scene():
    play = (
        "ACT I.\n\nScene I. A street.\n\n[Enter Sampson and Gregory.]\n\n"
        "Sampson.\nGregory, o' my word,\nwe'll not carry coals.\n\n"
        "Gregory.\nNo, for then we should be colliers. [Aside.]\n\n"
        "SCENE II. A hall.\n\n"
        "PUCK\nHow now, spirit!\n\nFAIRY\nOver hill, over dale.\n\nFAIRY\nI do wander everywhere.\n"
    )
    pairs = shakespeare_corpus.dialogue_pairs([("romeo_gut.txt", play)])
    assert [(p["speaker"], p["source"], p["reply_speaker"], p["target"]) for p in pairs] == [
        ("Sampson", "Gregory, o' my word, we'll not carry coals.", "Gregory", "No, for then we should be colliers."),
        ("PUCK", "How now, spirit!", "FAIRY", "Over hill, over dale."),
    ]  # no pair across the scene break, none between two turns of the same speaker


def test_a_wrong_chinese_poetry_archive_is_refused(tmp_path):
    poems = json.dumps([{"author": "李白", "title": "静夜思", "paragraphs": ["床前明月光，疑是地上霜。"]}], ensure_ascii=False)
    archive = _tarball(tmp_path / "fake.tgz", {"package/dist/quantangshi/poet.tang.0.json": poems.encode("utf-8")})
    with pytest.raises(DataError, match="holds 1 Tang poems, expected 57607"):
        tang_corpus.read_poems(archive)


def test_prepared_datasets_say_how_to_prepare_them(monkeypatch, tmp_path):
    monkeypatch.setenv("AIGC_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(DataError, match="aigc data prepare shakespeare"):
        bundle(name="shakespeare")
    with pytest.raises(DataError, match="aigc data prepare tang-poems"):
        load_dataset(DataConfig(name="tang-titles"), load_config("seq2seq-tiny").model)


def test_the_prepared_shakespeare_is_exactly_the_complete_works():
    require(is_prepared("shakespeare", ("shakespeare.txt", "dialogue.jsonl")), "the shakespeare corpus: run `aigc data prepare shakespeare`")
    from aigc.data.prepare import built_file

    text = built_file("shakespeare", "shakespeare.txt", "").read_text(encoding="utf-8")
    assert len(text) == 5_057_280 and len(set(text)) == 84
    assert text.startswith("ALL'S WELL THAT ENDS WELL") and text.rstrip().endswith("[Exeunt.]")
    with open(built_file("shakespeare", "dialogue.jsonl", ""), encoding="utf-8") as file:
        first = json.loads(file.readline())
    assert first["play"] == "alls_well_that_ends_well" and first["source"] and first["target"]


def test_the_prepared_tang_poems_hold_every_poem_with_a_title():
    require(is_prepared("tang-poems", ("tang-poems.txt", "titles.jsonl")), "the tang-poems corpus: run `aigc data prepare tang-poems`")
    from aigc.data.prepare import built_file, read_manifest

    manifest = read_manifest("tang-poems")
    assert manifest["parameters"]["poems"] == 57_607
    assert manifest["outputs"]["titles.jsonl"]["pairs"] == 57_607 - manifest["parameters"]["left_out"]
    with open(built_file("tang-poems", "titles.jsonl", ""), encoding="utf-8") as file:
        first = json.loads(file.readline())
    assert first == {"author": "太宗皇帝", "title": "帝京篇十首 一", "source": first["source"]}
    assert first["source"].startswith("秦川雄帝宅，函谷壯皇居。\n")
