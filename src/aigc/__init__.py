"""aigc: train, generate with, measure, shrink and serve generative models for images, text and audio."""

__version__ = "0.1.0"
