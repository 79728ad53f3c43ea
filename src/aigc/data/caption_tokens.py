"""Captioned images for image-to-text models (the captioner): images with caption *token ids*.

    digits-captioning          scikit-learn's 8x8 digits + the MNIST captions (tiny tests)
    mnist-captioning           MNIST + English and Chinese captions ("a handwritten seven", "手写的数字七")
    fashion-mnist-captioning   Fashion-MNIST + captions ("a pair of trousers", "一条裤子")

The captions are the `train` templates of aigc/data/captions.py (the `heldout` ones are never trained on).
The tokenizer is built from those captions (model.tokenizer_kind, word by default: English words, one
token per Chinese character) unless the model config already holds one, and handed back to the model
config like a text dataset's. A training batch picks one caption of each image's class at random (the
global RNG, so exact resume holds); validation and test batches pick caption `index mod count`.
Batches are {"images" float32 [B, C, H, W] in [-1, 1], "labels" [B], "captions" int64 [B, L]}: each
caption is <bos> ids <eos>, padded with <pad> to the longest in the batch.
"""

from __future__ import annotations

from typing import Any

import torch

from aigc.data.bundle import DatasetBundle, fingerprint_of
from aigc.data.captions import class_captions
from aigc.data.images import ImageDataset
from aigc.data.text import tokenizer_for
from aigc.data.tokenizers import BOS, EOS, PAD, encode_lines
from aigc.registry import get_dataset, register_dataset

MAX_CAPTION_TOKENS = 32  # longer captions are cut (the templates are far shorter)


class CaptionTokenDataset(ImageDataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, class_tokens: list[list[list[int]]], *, random_captions: bool):
        super().__init__(images, labels)
        width = max(len(ids) for captions in class_tokens for ids in captions) + 2
        counts = [len(captions) for captions in class_tokens]
        # [classes, captions per class (padded), tokens]: <bos> ids <eos> <pad>...
        self.table = torch.full((len(class_tokens), max(counts), width), PAD, dtype=torch.int64)
        for label, captions in enumerate(class_tokens):
            for index, ids in enumerate(captions):
                self.table[label, index, : len(ids) + 2] = torch.tensor([BOS, *ids, EOS])
        self.counts = torch.tensor(counts, dtype=torch.int64)
        self.random_captions = random_captions
        self.fingerprint = fingerprint_of(self.fingerprint, self.table)  # images, labels and the caption tokens they can get

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = super().get_batch(indices)
        labels = batch["labels"]
        counts = self.counts[labels]
        picks = torch.randint(0, 2**31 - 1, (len(indices),)) % counts if self.random_captions else indices % counts
        captions = self.table[labels, picks]  # [B, width]
        length = int((captions != PAD).sum(dim=1).max())
        batch["captions"] = captions[:, :length].contiguous()
        return batch


def _load(base: str, captions_of: str, data_config: Any, model_config: Any) -> DatasetBundle:
    bundle = get_dataset(base).load(data_config, model_config)
    texts = [class_captions(captions_of, label, "train") for label in range(bundle.num_classes)]
    tokenizer = tokenizer_for(model_config, "\n".join(text for group in texts for text in group))
    class_tokens = [[ids[:MAX_CAPTION_TOKENS] for ids in encode_lines(tokenizer, group)] for group in texts]

    def wrap(split, random_captions):
        return None if split is None else CaptionTokenDataset(split.images, split.labels, class_tokens, random_captions=random_captions)

    return DatasetBundle(
        train=wrap(bundle.train, True), val=wrap(bundle.val, False), test=wrap(bundle.test, False),
        num_classes=bundle.num_classes, class_names=bundle.class_names,
        source=f"{bundle.source}; captions: {sum(len(g) for g in texts)} train templates (English and Chinese) as {tokenizer.kind} tokens",
        skipped=bundle.skipped,
        model_settings={**bundle.model_settings, "tokenizer": tokenizer.to_json(), "vocab_size": tokenizer.vocab_size},
    )


def _register(name: str, base: str, captions_of: str, description: str) -> None:
    @register_dataset(
        name, modality="image", description=description, num_classes=10,
        source=f"the {base} dataset (aigc data list); captions from the train templates in aigc/data/captions.py",
        available=lambda: get_dataset(base).available(),
    )
    def load(data_config: Any, model_config: Any) -> DatasetBundle:
        return _load(base, captions_of, data_config, model_config)


_register("digits-captioning", "digits", "digits-captions", "scikit-learn 8x8 digits with caption tokens (English and Chinese), for captioners (tiny tests)")
_register("mnist-captioning", "mnist", "mnist-captions", "MNIST with caption tokens (\"a handwritten seven\", \"手写的数字七\"), for captioners")
_register("fashion-mnist-captioning", "fashion-mnist", "fashion-mnist-captions", "Fashion-MNIST with caption tokens (\"a pair of trousers\", \"一条裤子\"), for captioners")
