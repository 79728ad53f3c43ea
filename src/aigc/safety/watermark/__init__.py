"""Invisible watermarks: images (image.py), text from the project's language models (text.py)."""
