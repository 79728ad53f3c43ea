"""Tokenizers: exact round trips (English and Chinese), specials as ids only, determinism, serialisation."""

from __future__ import annotations

import pytest

from aigc.errors import ConfigError, DataError
from aigc.data.tokenizers import (
    EOS,
    NUM_SPECIAL,
    UNK,
    BPETokenizer,
    CharTokenizer,
    WordTokenizer,
    model_tokenizer,
    tokenizer_from_json,
    train_tokenizer,
)
from conftest import has_module, require

TRAINING = (
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate.\n"
    "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"
) * 5


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_round_trip_of_english_and_chinese(kind):
    if kind == "bpe":
        require(has_module("tokenizers"), "the tokenizers package (pip install tokenizers)")
    tokenizer = train_tokenizer(kind, TRAINING, 400)
    ids = tokenizer.encode(TRAINING)
    assert all(NUM_SPECIAL <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == TRAINING
    again = tokenizer_from_json(tokenizer.to_json())
    assert again.encode(TRAINING) == ids and again.vocab_size == tokenizer.vocab_size


def test_chinese_characters_are_single_tokens_for_char_and_word():
    for kind in ("char", "word"):
        tokenizer = train_tokenizer(kind, TRAINING, 400)
        assert len(tokenizer.encode("明月光")) == 3


def test_byte_level_bpe_encodes_any_text_exactly():
    require(has_module("tokenizers"), "the tokenizers package (pip install tokenizers)")
    tokenizer = train_tokenizer("bpe", TRAINING, 300)
    unseen = "Ünïcödé 🙂 𠀀 罕见字 \t\r\n  spaces"
    assert UNK not in tokenizer.encode(unseen)
    assert tokenizer.decode(tokenizer.encode(unseen)) == unseen
    assert tokenizer.vocab_size <= 300
    with pytest.raises(ConfigError, match="max_vocab"):
        train_tokenizer("bpe", TRAINING, 100)  # fewer than the 256 byte symbols


def test_special_tokens_are_ids_never_text():
    for tokenizer in (CharTokenizer.train(TRAINING + "<eos>"), WordTokenizer.train(TRAINING + "<eos>", 400)):
        ids = tokenizer.encode("<eos>")
        assert EOS not in ids and tokenizer.decode(ids) == "<eos>"
    assert CharTokenizer.train("ab").decode([EOS, 4, 5]) == "ab"  # specials decode to nothing, <unk> to U+FFFD


def test_unknown_symbols_become_unk():
    char = CharTokenizer.train("abc")
    assert char.encode("abz") == [4, 5, UNK]
    assert char.decode(char.encode("abz")) == "ab\ufffd"
    word = WordTokenizer.train("the cat the dog the", 6)  # 4 specials + 2 words: "the" and " "
    assert word.decode(word.encode("the cat")) == "the \ufffd"


def test_training_is_deterministic():
    for kind in ("char", "word") + (("bpe",) if has_module("tokenizers") else ()):
        assert train_tokenizer(kind, TRAINING, 300).to_json() == train_tokenizer(kind, TRAINING, 300).to_json()


def test_word_vocabulary_is_most_frequent_first():
    tokenizer = WordTokenizer.train("b a a c c c", 5 + NUM_SPECIAL)
    assert tokenizer.symbols[:2] == [" ", "c"]


def test_bad_inputs_have_clear_errors():
    with pytest.raises(ConfigError, match="tokenizer_kind"):
        train_tokenizer("sentencepiece", TRAINING, 100)
    with pytest.raises(DataError, match="empty"):
        train_tokenizer("char", "", 100)
    with pytest.raises(ConfigError, match="model.tokenizer"):
        tokenizer_from_json('{"kind": "char"}')


def test_model_tokenizer_checks_vocab_size():
    from aigc.models.text.transformer import GPTConfig

    tokenizer = CharTokenizer.train("abc")
    with pytest.raises(ConfigError, match="no tokenizer yet"):
        model_tokenizer(GPTConfig())
    with pytest.raises(ConfigError, match="vocab_size"):
        model_tokenizer(GPTConfig(tokenizer=tokenizer.to_json(), vocab_size=99))
    assert model_tokenizer(GPTConfig(tokenizer=tokenizer.to_json(), vocab_size=7)).encode("cab") == [6, 4, 5]


def test_bpe_decoding_of_a_partial_character_is_never_silently_wrong():
    require(has_module("tokenizers"), "the tokenizers package (pip install tokenizers)")
    tokenizer = BPETokenizer.train("x" * 10, 260 + NUM_SPECIAL)  # almost no merges: Chinese stays as bytes
    ids = tokenizer.encode("明")
    assert len(ids) == 3  # three UTF-8 bytes
    assert tokenizer.decode(ids[:2]).endswith("\ufffd")  # incomplete: visible as U+FFFD, which streaming holds back
    assert tokenizer.decode(ids) == "明"
