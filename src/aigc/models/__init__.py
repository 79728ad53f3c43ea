"""Model families. Importing this package registers every built-in family (one file each)."""

from aigc.models.image import captioner, classifier, diffusion, gan, vae  # noqa: F401
from aigc.models.text import rnn, seq2seq, transformer  # noqa: F401,E402
from aigc.models.audio import audio_vae, classifier as audio_classifier, pianoroll_vae, specgan, wavegan  # noqa: F401,E402
from aigc.models import style  # noqa: F401,E402  (adain, fast, cyclegan)
