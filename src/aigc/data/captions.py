"""Captioned image datasets for text-to-image: labelled images whose batches also carry the embedding of
a caption, computed once by the model's frozen prompt encoder (`aigc.prompts`).

    mnist-captions          MNIST + captions from templates in English and Chinese ("a handwritten seven", "手写的数字七")
    fashion-mnist-captions  Fashion-MNIST + captions ("a pair of trousers", "一条裤子")
    digits-captions         scikit-learn's 8x8 digits + the MNIST captions (tiny tests)
    emoji                   Twemoji, with captions from each emoji's name (data/emoji.py)

Caption templates come in two disjoint sets: `train` templates caption the training (and validation)
images; `heldout` templates are never seen in training and only used for evaluation (prompt accuracy:
does a prompt written in a way the model never saw still give the right digit?).

A training batch picks one of its image's captions at random (the global RNG, so exact resume holds);
validation and test batches pick caption `index mod count`, so evaluations are repeatable. Batches are
{"images", "labels", "text_embeddings" float32 [B, D]}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from aigc.data.bundle import DatasetBundle, fingerprint_of
from aigc.data.images import ImageDataset
from aigc.registry import get_dataset, register_dataset

# ------------------------------------------------------------------------------------------ templates

DIGIT_WORDS_EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGIT_WORDS_ZH = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]

# {w}: the English word, {d}: the numeral, {z}: the Chinese numeral.
DIGIT_TEMPLATES = {
    "train": {
        "en": [
            "a handwritten {w}", "the digit {w}", "the number {w}", "a picture of the number {w}",
            "handwritten digit {d}", "the number {d}, written by hand", "a scan of a handwritten {w}", "{w}",
            "digit {d}", "an image of a {w}", "a drawing of the digit {d}", "the number {w} in pen",
            "a black and white {w}", "a written {d}", "an MNIST {w}", "a blurry handwritten {w}",
        ],
        "zh": [
            "手写的数字{z}", "数字{z}", "一个手写的{z}", "阿拉伯数字{d}", "手写数字{d}", "一张数字{z}的图片",
            "写着{z}的图片", "{z}", "数字{d}", "手写体{z}", "一个黑白的数字{z}", "用笔写的{z}",
        ],
    },
    "heldout": {
        "en": ["a photo of a handwritten {w}", "someone wrote the number {w}", "the numeral {d}", "a sketch of the digit {w}"],
        "zh": ["有人写了数字{z}", "一张手写{z}的照片", "数字{d}的草图", "画了一个{z}"],
    },
}

# Fashion-MNIST classes: (English noun phrase, Chinese noun phrase with its measure word, bare Chinese noun).
FASHION_NAMES = [
    ("a T-shirt", "一件T恤", "T恤"), ("a pair of trousers", "一条裤子", "裤子"), ("a pullover", "一件套头衫", "套头衫"),
    ("a dress", "一条连衣裙", "连衣裙"), ("a coat", "一件外套", "外套"), ("a sandal", "一只凉鞋", "凉鞋"),
    ("a shirt", "一件衬衫", "衬衫"), ("a sneaker", "一只运动鞋", "运动鞋"), ("a bag", "一个包", "包"),
    ("an ankle boot", "一只短靴", "短靴"),
]
# {n}: the noun phrase ("a pair of trousers", "一条裤子"), {b}: the bare Chinese noun ("裤子").
FASHION_TEMPLATES = {
    "train": {
        "en": ["{n}", "a photo of {n}", "a grayscale picture of {n}", "a product image of {n}", "{n} on a black background", "a small image of {n}"],
        "zh": ["{n}", "{b}的照片", "一张{b}的黑白图片", "{b}的商品图", "黑色背景上的{n}", "一张{b}的小图"],
    },
    "heldout": {
        "en": ["a catalogue picture of {n}", "here is {n}"],
        "zh": ["商品目录里的{b}", "这是{n}"],
    },
}

LANGUAGES = ("en", "zh")
TEMPLATE_SETS = ("train", "heldout")


def digit_captions(digit: int, template_set: str = "train", language: str | None = None) -> list[str]:
    """The captions of one digit in a template set, English then Chinese (or one language)."""
    words = {"w": DIGIT_WORDS_EN[digit], "d": str(digit), "z": DIGIT_WORDS_ZH[digit]}
    languages = LANGUAGES if language is None else (language,)
    return [t.format(**words) for lang in languages for t in DIGIT_TEMPLATES[template_set][lang]]


def fashion_captions(label: int, template_set: str = "train", language: str | None = None) -> list[str]:
    english, chinese, bare = FASHION_NAMES[label]
    languages = LANGUAGES if language is None else (language,)
    return [t.format(n=english if lang == "en" else chinese, b=bare) for lang in languages for t in FASHION_TEMPLATES[template_set][lang]]


CLASS_CAPTIONS = {"mnist-captions": digit_captions, "digits-captions": digit_captions, "fashion-mnist-captions": fashion_captions}


def class_captions(dataset: str, label: int, template_set: str = "train", language: str | None = None) -> list[str]:
    """Captions of class `label` of a captioned class dataset (for evaluation with held-out templates)."""
    return CLASS_CAPTIONS[dataset](label, template_set, language)


# ------------------------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class CaptionTable:
    """Every distinct caption of a dataset, embedded once, and which captions describe which image group.

    groups of images share captions: for class datasets a group is a class, for emoji one image.
    """

    captions: list[str]  # M distinct captions
    embeddings: torch.Tensor  # float32 [M, D]
    choices: torch.Tensor  # int64 [G, K]: caption ids of each group, padded with -1
    counts: torch.Tensor  # int64 [G]: how many of choices[g] are real


def build_caption_table(group_captions: list[list[str]], encoder_name: str) -> CaptionTable:
    from aigc.prompts import encode_prompts

    captions = sorted({caption for group in group_captions for caption in group})
    index = {caption: i for i, caption in enumerate(captions)}
    width = max(len(group) for group in group_captions)
    choices = torch.full((len(group_captions), width), -1, dtype=torch.int64)
    for g, group in enumerate(group_captions):
        choices[g, : len(group)] = torch.tensor([index[c] for c in group])
    counts = torch.tensor([len(group) for group in group_captions], dtype=torch.int64)
    return CaptionTable(captions, encode_prompts(encoder_name, captions), choices, counts)


class CaptionedImageDataset(ImageDataset):
    """Images, labels, and a caption embedding per image: random in training, fixed in evaluation."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, table: CaptionTable, *, random_captions: bool):
        super().__init__(images, labels)
        self.groups = groups.contiguous()  # int64 [N]: caption group of each image
        self.table = table
        self.random_captions = random_captions
        self.fingerprint = fingerprint_of(self.fingerprint, "\n".join(table.captions), table.choices, self.groups)  # images, labels and the captions they can get

    def caption_ids(self, indices: torch.Tensor) -> torch.Tensor:
        groups = self.groups[indices]
        counts = self.table.counts[groups]
        if self.random_captions:
            picks = torch.randint(0, 2**31 - 1, (len(indices),)) % counts
        else:
            picks = indices % counts
        return self.table.choices[groups, picks]

    def captions(self, indices: torch.Tensor) -> list[str]:
        return [self.table.captions[i] for i in self.caption_ids(indices).tolist()]

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = super().get_batch(indices)
        batch["text_embeddings"] = self.table.embeddings[self.caption_ids(indices)]  # [B, D]
        return batch


def caption_bundle(bundle: DatasetBundle, table: CaptionTable, group_of, *, source: str, class_prompts: list[str] | None) -> DatasetBundle:
    """Wrap a labelled bundle's splits so that their batches carry caption embeddings."""

    def wrap(split, random_captions):
        if split is None:
            return None
        return CaptionedImageDataset(split.images, split.labels, group_of(split), table, random_captions=random_captions)

    settings = {"text_embedding_dim": int(table.embeddings.shape[1])}
    if class_prompts is not None:
        settings["class_prompts"] = class_prompts
    return DatasetBundle(
        train=wrap(bundle.train, True), val=wrap(bundle.val, False), test=wrap(bundle.test, False),
        num_classes=bundle.num_classes, class_names=bundle.class_names, source=source,
        skipped=bundle.skipped, model_settings={**bundle.model_settings, **settings},
    )


def encoder_name(model_config: Any) -> str:
    from aigc.prompts import DEFAULT_PROMPT_ENCODER

    return getattr(model_config, "prompt_encoder", None) or DEFAULT_PROMPT_ENCODER


def _load_class_captions(base: str, name: str, data_config: Any, model_config: Any) -> DatasetBundle:
    bundle = get_dataset(base).load(data_config, model_config)
    caption = CLASS_CAPTIONS[name]
    group_captions = [caption(label, "train") for label in range(bundle.num_classes)]
    table = build_caption_table(group_captions, encoder_name(model_config))
    return caption_bundle(
        bundle, table, lambda split: split.labels, class_prompts=[group[0] for group in group_captions],
        source=f"{bundle.source}; captions: {len(table.captions)} train templates (English and Chinese), "
        f"embedded by {encoder_name(model_config)}",
    )


def _available(base: str):
    def check() -> str | None:
        from aigc.prompts.encoders import _use_available

        return get_dataset(base).available() or _use_available()

    return check


def _register_class_captions(name: str, base: str, description: str) -> None:
    @register_dataset(
        name, modality="image", description=description, num_classes=10,
        source=f"the {base} dataset (aigc data list); captions from templates in aigc/data/captions.py",
        available=_available(base),
    )
    def load(data_config: Any, model_config: Any) -> DatasetBundle:
        return _load_class_captions(base, name, data_config, model_config)


_register_class_captions("mnist-captions", "mnist", "MNIST with English and Chinese captions (\"a handwritten seven\", \"手写的数字七\"); held-out templates for evaluation")
_register_class_captions("fashion-mnist-captions", "fashion-mnist", "Fashion-MNIST with English and Chinese captions (\"a pair of trousers\", \"一条裤子\")")
_register_class_captions("digits-captions", "digits", "scikit-learn 8x8 digits with the MNIST captions (tiny tests)")
