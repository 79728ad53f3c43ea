"""Datasets by name. Each loader returns a `DatasetBundle` (data/bundle.py) of in-memory splits that the
loop batches; importing this package registers the built-in loaders (images, text, captions, emoji).
"""

from __future__ import annotations

from aigc.data import images as _images  # noqa: F401  (registers the image datasets)
from aigc.data import text as _text  # noqa: F401  (registers the text datasets)
from aigc.data import captions as _captions  # noqa: F401  (registers the captioned image datasets)
from aigc.data import caption_tokens as _caption_tokens  # noqa: F401  (registers the captioning datasets)
from aigc.data import emoji as _emoji  # noqa: F401  (registers the Twemoji dataset)
from aigc.data import audio as _audio  # noqa: F401  (registers the audio datasets)
from aigc.data import music as _music  # noqa: F401  (registers the chorale datasets)
from aigc.data import style_sets as _style_sets  # noqa: F401  (registers the style-transfer photos)
from aigc.data import digit_domains as _digit_domains  # noqa: F401  (registers the CycleGAN digit domains)
from aigc.data.bundle import BatchSource, DatasetBundle, split_indices
from aigc.errors import DataError
from aigc.registry import get_dataset

__all__ = ["BatchSource", "DatasetBundle", "load_dataset", "split_indices"]


def load_dataset(data_config, model_config) -> DatasetBundle:
    spec = get_dataset(data_config.name)
    if data_config.path is None:
        missing = spec.available()
        if missing:
            raise DataError(missing, field="data.name", fix="install it, or point --set data.path=DIR at your own copy")
    return spec.load(data_config, model_config)
