"""Tokenizers: characters, words and byte-level BPE, serialisable into a model's config.

A text model always decodes with the tokenizer it was trained with: the tokenizer is built from the
training text by the data loader, serialised to a JSON string, and stored in the model config's
`tokenizer` field (so it lives in `checkpoint.json` next to the weights).

Every tokenizer has the same four special tokens at the same ids, before its own symbols:

    0 <pad>   padding in batches of unequal lengths (never a target)
    1 <bos>   start of a sequence (seq2seq decoders start from it)
    2 <eos>   end of a sequence (generation stops on it)
    3 <unk>   a symbol the vocabulary lacks (decodes to U+FFFD)

Special tokens are ids, never text: a user's text that contains "<eos>" is encoded letter by letter.

    char  one id per Unicode code point seen in the training text (Chinese: one per character)
    word  whitespace runs, words and single punctuation marks (CJK: one per character), most frequent first
    bpe   byte-level BPE trained with the `tokenizers` package (Sennrich et al. 2016,
          https://arxiv.org/abs/1508.07909; byte-level as in GPT-2): any UTF-8 text encodes, nothing is unknown
    event space-separated symbols (note-event text of the chorale models, aigc.signal.music): one token per
          symbol and per line break, spaces are not tokens (decoding writes one space after each symbol)

Round trip: `decode(encode(text)) == text` for any text whose symbols are in the vocabulary (always, for bpe;
for event, up to the spaces between symbols).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Iterable, Literal

from pydantic import Field

from aigc.config import BaseConfig
from aigc.errors import ConfigError, DataError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
NUM_SPECIAL = len(SPECIAL_TOKENS)
UNKNOWN_TEXT = "\ufffd"  # what <unk> decodes to

TokenizerKind = Literal["char", "word", "bpe", "event"]


class TokenizerSettings(BaseConfig):
    """Model-config fields shared by every text family: which tokenizer, and the trained one."""

    tokenizer_kind: TokenizerKind = "char"  # char, word, bpe or event; used when the data builds the tokenizer
    max_vocab: int = Field(8192, ge=NUM_SPECIAL + 1)  # word: keep the most frequent; bpe: target vocabulary size
    tokenizer: str | None = None  # the trained tokenizer as JSON; filled from the training data when empty
    vocab_size: int | None = Field(None, ge=NUM_SPECIAL + 1)  # filled from the tokenizer when empty


# ---------------------------------------------------------------------------------------------------------


class Tokenizer:
    """Base class: text <-> ids, with the four special tokens at ids 0..3."""

    kind: str = ""

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def to_json(self) -> str:
        raise NotImplementedError

    def token_text(self, token_id: int) -> str:
        """A readable form of one id (for debugging; byte-level BPE pieces may be partial characters)."""
        return SPECIAL_TOKENS[token_id] if token_id < NUM_SPECIAL else self.decode([token_id])


class SymbolTokenizer(Tokenizer):
    """A fixed list of symbols (characters or words); ids are NUM_SPECIAL + position in the list."""

    def __init__(self, symbols: list[str]):
        if len(set(symbols)) != len(symbols):
            raise ValueError("tokenizer symbols must be distinct")
        self.symbols = list(symbols)
        self.ids = {symbol: NUM_SPECIAL + index for index, symbol in enumerate(self.symbols)}

    @property
    def vocab_size(self) -> int:
        return NUM_SPECIAL + len(self.symbols)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        ids = self.ids
        return [ids.get(piece, UNK) for piece in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id >= NUM_SPECIAL:
                pieces.append(self.symbols[token_id - NUM_SPECIAL])
            elif token_id == UNK:
                pieces.append(UNKNOWN_TEXT)
        return "".join(pieces)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "symbols": self.symbols}, ensure_ascii=False)


class CharTokenizer(SymbolTokenizer):
    kind = "char"

    @classmethod
    def train(cls, text: str, max_vocab: int | None = None) -> "CharTokenizer":
        # Every character of the training text; sorted by code point so the same text gives the same ids.
        return cls(sorted(set(text)))

    def split(self, text: str) -> list[str]:
        return list(text)


# Words: a run of whitespace, a run of letters/digits/underscore, or one other character. CJK ideographs,
# kana and hangul are one token each (those scripts do not separate words with spaces).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_WORD_PATTERN = re.compile(rf"\s+|[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")


class WordTokenizer(SymbolTokenizer):
    kind = "word"

    @classmethod
    def train(cls, text: str, max_vocab: int) -> "WordTokenizer":
        counts = Counter(_WORD_PATTERN.findall(text))
        # Most frequent first; ties by the word itself, so the vocabulary is a pure function of the text.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([word for word, _ in ranked[: max_vocab - NUM_SPECIAL]])

    def split(self, text: str) -> list[str]:
        return _WORD_PATTERN.findall(text)


_EVENT_PATTERN = re.compile(r"\n|[^\s]+")


class EventTokenizer(SymbolTokenizer):
    """Space-separated symbols and line breaks, e.g. note-event text (aigc.signal.music): `t4 p67 d2`. A
    symbol is one token, spaces are not tokens (decoding writes one after each symbol), a line break is one."""

    kind = "event"

    @classmethod
    def train(cls, text: str, max_vocab: int) -> "EventTokenizer":
        counts = Counter(_EVENT_PATTERN.findall(text))
        return cls([symbol for symbol, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: max_vocab - NUM_SPECIAL]])

    def split(self, text: str) -> list[str]:
        return _EVENT_PATTERN.findall(text)

    def decode(self, ids: Iterable[int]) -> str:
        # Each symbol with its own trailing space, so decode(a + b) == decode(a) + decode(b) (text is decoded
        # piece by piece as it is generated); a line break stands alone.
        pieces = [self.symbols[i - NUM_SPECIAL] if i >= NUM_SPECIAL else UNKNOWN_TEXT for i in map(int, ids) if i >= NUM_SPECIAL or i == UNK]
        return "".join(piece if piece == "\n" else piece + " " for piece in pieces)


class BPETokenizer(Tokenizer):
    """Byte-level BPE from the `tokenizers` package; its ids are shifted by NUM_SPECIAL."""

    kind = "bpe"

    def __init__(self, serialized: str):
        from tokenizers import Tokenizer as HFTokenizer

        self.serialized = serialized
        self.backend = HFTokenizer.from_str(serialized)

    @classmethod
    def train(cls, text: str, max_vocab: int) -> "BPETokenizer":
        try:
            from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers
        except ImportError:
            raise ConfigError(
                "the bpe tokenizer needs the `tokenizers` package", field="model.tokenizer_kind", fix="pip install tokenizers"
            ) from None
        alphabet = pre_tokenizers.ByteLevel.alphabet()  # all 256 bytes, so nothing is ever unknown
        if max_vocab - NUM_SPECIAL < len(alphabet):
            raise ConfigError(
                f"byte-level BPE needs at least {len(alphabet) + NUM_SPECIAL} tokens, got max_vocab={max_vocab}",
                field="model.max_vocab",
                fix=f"--set model.max_vocab={len(alphabet) + NUM_SPECIAL + 256} or more",
            )
        backend = HFTokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=max_vocab - NUM_SPECIAL, initial_alphabet=alphabet, special_tokens=[], show_progress=False
        )
        # Lines as training units: the trainer counts words per item, and this bounds each item's size.
        backend.train_from_iterator(text.splitlines(keepends=True), trainer)
        return cls(backend.to_str())

    @property
    def vocab_size(self) -> int:
        return NUM_SPECIAL + self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return [NUM_SPECIAL + token_id for token_id in self.backend.encode(text, add_special_tokens=False).ids]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        encodings = self.backend.encode_batch(texts, add_special_tokens=False)
        return [[NUM_SPECIAL + token_id for token_id in encoding.ids] for encoding in encodings]

    def decode(self, ids: Iterable[int]) -> str:
        pieces: list[str] = []
        run: list[int] = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id >= NUM_SPECIAL:
                run.append(token_id - NUM_SPECIAL)
                continue
            if token_id == UNK:  # cannot come from encode; only a model can emit it
                pieces.append(self.backend.decode(run, skip_special_tokens=False))
                pieces.append(UNKNOWN_TEXT)
                run = []
        pieces.append(self.backend.decode(run, skip_special_tokens=False))
        return "".join(pieces)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "backend": json.loads(self.serialized)}, ensure_ascii=False)


_KINDS: dict[str, type] = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer, "event": EventTokenizer}


def train_tokenizer(kind: str, text: str, max_vocab: int) -> Tokenizer:
    """A tokenizer of `kind` built from `text` (deterministic: the same text gives the same ids)."""
    if kind not in _KINDS:
        raise ConfigError(f"unknown tokenizer {kind!r}", field="model.tokenizer_kind", fix=f"use one of: {', '.join(_KINDS)}")
    if not text:
        raise DataError("cannot build a tokenizer from empty text", field="data.path", fix="give a non-empty UTF-8 text")
    return _KINDS[kind].train(text, max_vocab)


def tokenizer_from_json(serialized: str) -> Tokenizer:
    """The tokenizer stored in a model config (`model.tokenizer`)."""
    try:
        document = json.loads(serialized)
        kind = document["kind"]
        if kind == "bpe":
            return BPETokenizer(json.dumps(document["backend"], ensure_ascii=False))
        return _KINDS[kind](list(document["symbols"]))
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"model.tokenizer does not hold a valid tokenizer ({type(error).__name__}: {error})",
            field="model.tokenizer",
            fix="leave model.tokenizer out to build one from the training data",
        ) from None


def encode_lines(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """encode() over many short texts (BPE encodes them in one batched call)."""
    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.encode_many(texts)
    return [tokenizer.encode(text) for text in texts]


def model_tokenizer(config: TokenizerSettings) -> Tokenizer:
    """The tokenizer of a built model, with a clear message when the config has none yet."""
    if config.tokenizer is None or config.vocab_size is None:
        raise ConfigError(
            "this text model has no tokenizer yet",
            field="model.tokenizer",
            fix="train it on a text dataset (the data fills model.tokenizer and model.vocab_size)",
        )
    tokenizer = tokenizer_from_json(config.tokenizer)
    if tokenizer.vocab_size != config.vocab_size:
        raise ConfigError(
            f"model.vocab_size is {config.vocab_size} but model.tokenizer has {tokenizer.vocab_size} tokens",
            field="model.vocab_size",
            fix="leave model.vocab_size out to take it from the tokenizer",
        )
    return tokenizer
