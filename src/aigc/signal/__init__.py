"""Signal processing for audio, with no torchaudio: STFT/iSTFT, mel filterbank, log-mel, Griffin-Lim.

It sits below data, models and metrics (import-linter layer "signal"), so all three compute spectrograms
the same way. Everything is in `aigc.signal.spectral`; its `__all__` is the public part.
"""

# Re-export exactly spectral.__all__, so the public names are listed in one place.
from aigc.signal.spectral import *  # noqa: F403
from aigc.signal.spectral import __all__ as __all__
