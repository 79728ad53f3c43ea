"""Generation requests: validated input for `model.generate(request)`, one class per kind of model.

`GenerationRequest` is what every modality shares: how many samples (`count`) and the `seed` that makes
them again (sample i uses `seed + i`, so any one sample can be remade alone), and how a request splits
into smaller requests that give the same samples (`chunks`, used by the studio for progress and resume).
Image, text and audio requests extend it with their own fields.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from aigc.config import BaseConfig

MAX_IMAGES = 1024
MAX_SEED = 2**63
RANDOM_SEED = -1  # "pick one for me": replaced by a random seed when the request is made, and recorded
# Marks a field that takes image files (a path, or a list of paths): its JSON schema says `"format": "image"`,
# so the studio's page shows a file input for it and its jobs take uploads there (`image_fields`).
IMAGE_INPUT = {"format": "image"}


def image_fields(request_class: type) -> list[str]:
    """The fields of a request class that take image files (marked with IMAGE_INPUT)."""
    return [name for name, info in request_class.model_fields.items() if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("format") == "image"]


class GenerationRequest(BaseConfig):
    count: int = Field(1, ge=1)  # number of samples
    seed: int = Field(RANDOM_SEED, ge=RANDOM_SEED, lt=MAX_SEED, validate_default=True)  # sample i uses seed + i; -1 (default) = random
    # The seed of each sample when `merge` joined requests (not seed, seed + 1, ...); not a field: never sent or stored.
    _seeds: list[int] | None = PrivateAttr(None)

    @field_validator("seed")
    @classmethod
    def _random_seed(cls, seed: int) -> int:
        """-1 becomes a random seed at once, so the request (and every artifact) holds the seed really used."""
        return secrets.randbelow(2**32) if seed == RANDOM_SEED else seed

    @model_validator(mode="after")
    def _seed_is_set(self) -> "GenerationRequest":
        # A drawn seed counts as given: copies made with model_dump(exclude_unset=True) must keep it.
        self.__pydantic_fields_set__.add("seed")
        return self

    def chunkable(self) -> bool:
        """Whether `chunks` may split this request (a latent walk or a ranked beam set is one piece); requests
        that can be split can also be joined (`merge`)."""
        return True

    def sample_seeds(self) -> list[int]:
        """The seed of each sample: seed + i, or, for a merged request, the seeds of the requests it joined."""
        return list(self._seeds) if self._seeds is not None else [self.seed + index for index in range(self.count)]

    def merge_fields(self, requests: list["GenerationRequest"], num_classes: int | None) -> dict[str, Any]:
        """Fields, besides count and seed, of the request that joins `requests` (per-sample fields, joined)."""
        return {}

    @staticmethod
    def merge(requests: list["GenerationRequest"], num_classes: int | None = None) -> "GenerationRequest":
        """One request for the samples of several with the same settings (count, seed and per-sample fields may
        differ): its samples are theirs, in order, each with its own seed (`sample_seeds`), so a model that
        draws sample i from `sample_seeds()[i]` alone makes the same samples in one batch. The studio runs
        queued jobs of one model this way; the artifact's `part(start, stop)` gives each its samples back."""
        first = requests[0]
        seeds = [seed for request in requests for seed in request.sample_seeds()]
        merged = first.model_copy(update={"count": len(seeds), "seed": seeds[0], **first.merge_fields(requests, num_classes)})
        merged._seeds = seeds
        return merged

    def chunk_fields(self, start: int, count: int, num_classes: int | None) -> dict[str, Any]:
        """Fields, besides count and seed, of the sub-request for samples start .. start+count-1."""
        return {}

    def chunks(self, size: int, num_classes: int | None = None) -> list[tuple[int, "GenerationRequest"]]:
        """(first sample index, request) pieces of at most `size` samples that together give exactly the samples
        of this request: sample i uses seed + i, and per-sample fields are resolved before splitting."""
        if self.count <= size or not self.chunkable():
            return [(0, self)]
        pieces, seeds = [], self.sample_seeds()
        for start in range(0, self.count, size):
            count = min(size, self.count - start)
            piece = self.model_copy(update={"count": count, "seed": seeds[start], **self.chunk_fields(start, count, num_classes)})
            piece._seeds = None if self._seeds is None else seeds[start : start + count]
            pieces.append((start, piece))
        return pieces


def keep_seeds(source: Any, converted: Any) -> Any:
    """`converted`, a request validated from `source`'s fields, with source's merged seeds (which are no field)."""
    seeds = getattr(source, "_seeds", None)
    if seeds is not None and isinstance(converted, GenerationRequest):
        converted._seeds = list(seeds)
    return converted


class ImageRequest(GenerationRequest):
    count: int = Field(16, ge=1, le=MAX_IMAGES)  # number of images
    labels: list[int] | None = None  # class per image (conditional models); one label is repeated for all

    @field_validator("labels")
    @classmethod
    def _labels_non_negative(cls, labels: list[int] | None) -> list[int] | None:
        if labels is not None and any(label < 0 for label in labels):
            raise ValueError("class labels are >= 0")
        return labels

    def chunk_fields(self, start: int, count: int, num_classes: int | None) -> dict[str, Any]:
        labels = self.labels_for(num_classes)
        return {"labels": None if labels is None else labels[start : start + count]}

    def merge_fields(self, requests: list["GenerationRequest"], num_classes: int | None) -> dict[str, Any]:
        labels = [request.labels_for(num_classes) for request in requests]
        return {"labels": None if labels[0] is None else [label for part in labels for label in part]}

    def labels_for(self, num_classes: int | None) -> list[int] | None:
        """The label of each image: the given ones (one repeats), or 0..K-1 cycling for a conditional model."""
        from aigc.errors import AigcError

        if num_classes is None:
            if self.labels is not None:
                raise AigcError("this model is unconditional and takes no label", field="labels", fix="leave --label out")
            return None
        labels = self.labels if self.labels is not None else list(range(num_classes))
        if len(labels) == 1:
            labels = labels * self.count
        if len(labels) != self.count and self.labels is not None:
            raise AigcError(f"got {len(labels)} labels for {self.count} images", field="labels", fix="give one label, or one per image")
        labels = [labels[i % len(labels)] for i in range(self.count)]
        for label in labels:
            if label >= num_classes:
                raise AigcError(f"label {label} is out of range", field="labels", fix=f"use 0..{num_classes - 1}")
        return labels


MAX_GUIDANCE = 30.0
MAX_PROMPT_CHARS = 500


class LatentImageRequest(ImageRequest):
    """An image request for models that draw from a latent space they can walk (VAE, GAN, diffusion noise).

    `interpolate=(A, B)` makes `count` images along the path between the noise of seed A and of seed B
    (spherical interpolation, which keeps Gaussian noise at its typical norm; White 2016,
    https://arxiv.org/abs/1609.04468).
    """

    interpolate: tuple[int, int] | None = None  # seeds A and B; `count` images from A to B inclusive

    def chunkable(self) -> bool:
        return self.interpolate is None  # a walk is one path: its images depend on both ends

    @field_validator("interpolate")
    @classmethod
    def _seeds_in_range(cls, pair: tuple[int, int] | None) -> tuple[int, int] | None:
        if pair is not None and not all(0 <= seed < 2**63 for seed in pair):
            raise ValueError("interpolation seeds are >= 0")
        return pair


MAX_CLIPS = 256


class AudioRequest(LatentImageRequest):
    """Sound from an audio model: `count` clips, `labels` for class-conditional ones (as ImageRequest), and
    `interpolate=(A, B)`, a walk between two seeds' latent noise (as LatentImageRequest). It shares their
    fields and checks instead of copying them; nothing in an audio request is about pixels."""

    count: int = Field(10, ge=1, le=MAX_CLIPS)  # number of clips


class PromptImageRequest(LatentImageRequest):
    """Text-to-image: a prompt (any language the model's prompt encoder reads), in place of labels.

    One prompt for all images, or one per image. `labels` still work on models trained on captioned
    classes (MNIST digits): label k stands for that class's first caption.
    """

    prompt: str | list[str] | None = None  # "a handwritten seven", "一个笑脸"; a list gives one per image

    @field_validator("prompt")
    @classmethod
    def _prompt_not_empty(cls, prompt: str | list[str] | None) -> str | list[str] | None:
        texts = [prompt] if isinstance(prompt, str) else prompt or []
        for text in texts:
            if not text.strip():
                raise ValueError("the prompt is empty: describe the image, e.g. \"a handwritten seven\" or \"一个笑脸\"")
            if len(text) > MAX_PROMPT_CHARS:
                raise ValueError(f"the prompt is {len(text)} characters long; at most {MAX_PROMPT_CHARS}")
        return prompt

    def chunk_fields(self, start: int, count: int, num_classes: int | None) -> dict[str, Any]:
        prompts = self.prompts_for()
        if prompts is None:
            return super().chunk_fields(start, count, num_classes)
        part = prompts[start : start + count]
        return {"prompt": part[0] if len(set(part)) == 1 else part}

    def merge_fields(self, requests: list["GenerationRequest"], num_classes: int | None) -> dict[str, Any]:
        prompts = [request.prompts_for() for request in requests]
        if all(part is None for part in prompts):
            return super().merge_fields(requests, num_classes)
        joined = [prompt for part in prompts for prompt in part]  # (a None among prompts fails here: not mergeable)
        return {"prompt": joined[0] if len(set(joined)) == 1 else joined}

    def labels_for(self, num_classes: int | None) -> list[int] | None:
        """A prompted request has no labels (the prompt says what to draw); otherwise as ImageRequest."""
        if self.prompt is None:
            return super().labels_for(num_classes)
        if self.labels is not None:
            from aigc.errors import AigcError

            raise AigcError("give a prompt or labels, not both", field="labels", fix="leave --label out when you give --prompt")
        return None

    def prompts_for(self) -> list[str] | None:
        """The prompt of each image (one repeats), or None when no prompt was given."""
        from aigc.errors import AigcError

        if self.prompt is None:
            return None
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if len(prompts) == 1:
            return prompts * self.count
        if len(prompts) != self.count:
            raise AigcError(f"got {len(prompts)} prompts for {self.count} images", field="prompt", fix="give one prompt, or one per image")
        return prompts


class DiffusionImageRequest(LatentImageRequest):
    """Diffusion sampling: which scheduler, how many of its steps, and (class-conditional models) a guidance scale."""

    guidance: float | None = Field(None, ge=0.0, le=MAX_GUIDANCE)  # classifier-free guidance scale (None: the model's default)
    sampler: Literal["ddpm", "ddim", "dpmpp-2m"] | None = None  # None: the model's default; dpmpp-2m = DPM-Solver++(2M)
    sample_steps: int | None = Field(None, ge=1, le=1000)  # denoising steps; DDIM gives images in 10-50


class TextToImageRequest(DiffusionImageRequest, PromptImageRequest):
    """Text-to-image diffusion: a prompt, plus the sampling settings of DiffusionImageRequest."""


MAX_STYLE_SIZE = 2048  # pixels on the long side: a 2048x2048 Gatys run is already minutes on a GPU


class FastStyleRequest(GenerationRequest):
    """Style transfer by a network whose style is built in (a fast network learned one style image): a content
    image and how strongly to paint it, no style images (the studio's form shows no style upload for it).

    Images are file paths (any format `aigc.data.image_files.read_image` reads; the studio passes its stored
    uploads). A trained network is deterministic: sample i uses seed + i, and all samples are the same image.
    """

    count: int = Field(1, ge=1, le=8)  # images; they differ only where the method draws noise
    content: str = Field(json_schema_extra=IMAGE_INPUT)  # path of the content image
    alpha: float = Field(1.0, ge=0.0, le=1.0)  # 0 = the content unchanged, 1 = fully stylised
    size: int = Field(512, ge=64, le=MAX_STYLE_SIZE)  # long side of the output, in pixels
    preserve_color: bool = False  # keep the content's colours: only the luminance is stylised


class StyleRequest(FastStyleRequest):
    """Style transfer: a content image painted in the style of one or more style images (aigc.models.style).

    Several styles blend by `style_weights` (AdaIN, Gatys). Sample i uses seed + i (only what starts from
    noise, e.g. Gatys with init="noise", depends on it).
    """

    style: list[str] = Field([], json_schema_extra=IMAGE_INPUT)  # paths of the style images
    style_weights: list[float] | None = None  # one per style image, blended in proportion (default: equal)

    @field_validator("style_weights")
    @classmethod
    def _weights_positive(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and (not weights or any(w < 0 for w in weights) or sum(weights) <= 0):
            raise ValueError("style weights are >= 0 and not all 0, one per style image")
        return weights

    @model_validator(mode="after")
    def _one_weight_per_style(self) -> "StyleRequest":
        if self.style_weights is not None and len(self.style_weights) != len(self.style):
            raise ValueError(f"{len(self.style_weights)} style weights for {len(self.style)} style images: give one weight per style image")
        return self

    def blend(self) -> list[float]:
        """The style weights, summing to 1."""
        weights = self.style_weights or [1.0] * len(self.style)
        return [w / sum(weights) for w in weights]


class TranslateRequest(GenerationRequest):
    """Unpaired image-to-image translation (CycleGAN): one image from domain A to B, or back."""

    count: int = Field(1, ge=1, le=1)
    image: str = Field(json_schema_extra=IMAGE_INPUT)  # path of the image to translate
    direction: Literal["a_to_b", "b_to_a"] = "a_to_b"


MAX_CAPTION_IMAGE_PIXELS = 4096 * 4096  # a bigger file is refused before it is decoded


class CaptionRequest(GenerationRequest):
    """Image-to-text (the captioner): a caption of one image.

    `image` is a path to an image file (any format Pillow reads) or a uint8 array [H, W] or [H, W, C] with
    C = 1, 3 or 4; the model fits it to its own geometry with the one resize filter. Beam search keeps
    `num_beams` candidates (1 = greedy); it is deterministic, so `seed` only names the sample.
    """

    count: int = Field(1, ge=1, le=1)
    image: Any = Field(None, validate_default=True, json_schema_extra=IMAGE_INPUT)  # path or uint8 array
    num_beams: int = Field(3, ge=1, le=16)
    max_tokens: int = Field(24, ge=1, le=64)  # caption tokens at most

    @field_validator("image", mode="before")
    @classmethod
    def _an_image(cls, image: Any) -> Any:
        import numpy as np

        if image is None:
            raise ValueError("a caption needs an image: give the path of an image file or a uint8 array [H, W] / [H, W, C]")
        if hasattr(image, "__fspath__") or isinstance(image, str):
            from PIL import Image, UnidentifiedImageError

            path = str(image)
            try:
                with Image.open(path) as opened:
                    if opened.width * opened.height > MAX_CAPTION_IMAGE_PIXELS:
                        raise ValueError(f"{path} is {opened.width}x{opened.height}: too large (at most {MAX_CAPTION_IMAGE_PIXELS} pixels)")
                    opened.verify()
            except FileNotFoundError:
                raise ValueError(f"{path} does not exist: give the path of an image file") from None
            except (UnidentifiedImageError, OSError, SyntaxError):
                raise ValueError(f"{path} is not an image file Pillow can read (PNG, JPEG, BMP, GIF, WebP, ...)") from None
            return path
        if hasattr(image, "detach"):  # a torch tensor
            image = image.detach().cpu().numpy()
        if not isinstance(image, np.ndarray):
            raise ValueError(f"expected a path or a uint8 array, got {type(image).__name__}")
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)) or min(image.shape[:2]) < 1:
            raise ValueError(f"expected a uint8 array [H, W] or [H, W, C] with C = 1, 3 or 4, got {image.dtype} {list(image.shape)}")
        return image

    def pixels(self) -> "Any":
        """The image as uint8 [H, W, C] (C = 1 or 3; alpha composited onto white, as the image datasets do)."""
        import numpy as np

        image = self.image
        if isinstance(image, str):
            from PIL import Image

            with Image.open(image) as opened:
                if opened.mode in ("RGBA", "LA", "P", "PA"):
                    image = np.asarray(opened.convert("RGBA"))
                else:
                    image = np.asarray(opened.convert("L" if opened.mode in ("L", "1", "I", "I;16", "F") else "RGB"))
        image = image[:, :, None] if image.ndim == 2 else image
        if image.shape[2] == 4:  # composite onto white
            alpha = image[:, :, 3:].astype(np.float32) / 255.0
            image = (image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
        return image
