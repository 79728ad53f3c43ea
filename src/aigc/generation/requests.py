"""Generation requests: validated input for `model.generate(request)`, one class per modality."""

from __future__ import annotations

from pydantic import Field, field_validator

from aigc.config import BaseConfig

MAX_IMAGES = 1024


class ImageRequest(BaseConfig):
    count: int = Field(16, ge=1, le=MAX_IMAGES)  # number of images
    seed: int = Field(0, ge=0, lt=2**63)  # sample i uses seed + i, so any one image can be made again alone
    labels: list[int] | None = None  # class per image (conditional models); one label is repeated for all

    @field_validator("labels")
    @classmethod
    def _labels_non_negative(cls, labels: list[int] | None) -> list[int] | None:
        if labels is not None and any(label < 0 for label in labels):
            raise ValueError("class labels are >= 0")
        return labels

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
