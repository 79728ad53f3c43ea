"""An invisible, keyed image watermark that survives JPEG, resizing, cropping, small rotations and
brightness/contrast changes, with a detector whose false-positive rate is known exactly.

Embedding (spread spectrum over a repeated tile; Cox et al. 1997, https://doi.org/10.1109/83.650120, and
the tiling that makes crops and scales recoverable, Kutter 1999, https://doi.org/10.1117/12.344693):
    1. the key draws a 24x24 grid of cells, each cell 4x4 pixels (a 96-pixel tile); each of the 48 payload
       bits owns 12 cells, and each cell a random sign (the "chip")
    2. the tile is +-1 per cell = chip x (bit ? +1 : -1), smoothed (no hard edges for JPEG to ring on)
    3. the tile is repeated over the image and added to its luminance with amplitude STRENGTH grey levels,
       more where the image is busy (texture hides it) and less in flat areas (the same change to R, G, B)
The payload is 48 bits drawn from the key: every cell of every tile repeats its bit (a repetition code
read with soft decisions: summed before the sign is taken), so a few destroyed tiles do not lose a bit.

Detection (`detect`), for a file of any size:
    1. luminance -> residual: the image minus its blur, divided by its local contrast (content out, mark in)
    2. geometry: first as made; then scale and rotation from the peaks of the residual's autocorrelation
       (a repeated tile makes a lattice of peaks at its period, however the image was resized or turned)
    3. the residual is folded onto one tile (sum over tiles) and correlated with each bit's cells at every
       shift (FFT); the shift where the correlations carry the most energy is the tile's position (a crop)
    4. the 48 signs are the bits; the mark is present when at most MAX_WRONG_BITS differ from the key's
       payload. On an unmarked image each bit is a fair coin, so the chance of that is the binomial tail,
       P(<= 5 of 48 wrong) = 6.8e-9, times the number of geometries tried (<= 27): under 2e-7.
    When the lattice cannot be read (a small or flat image), whole-degree rotations from -6 to 6 are tried
    at scale 1, then the common resizes (SCALES) unturned.

Images smaller than MIN_SIDE pixels are not marked: a 28x28 MNIST digit holds less than one tile, and even
256 pixels hold only ~7 tiles, which is what the measured robustness rests on (benchmarks/safety_watermark.py).
A grid (save_grid) that reaches MIN_SIDE is marked as one picture (ImageWatermark.mark_picture), more
strongly where its borders and flat backgrounds need it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

BITS = 48
CELL = 4  # pixels per cell side
CELLS = 24  # cells per tile side
TILE = CELL * CELLS  # 96 pixels
STRENGTH = 3.0  # grey levels (of 255) at average texture
MIN_SIDE = 256  # smaller images are left unmarked (see the module docstring)
MAX_WRONG_BITS = 5
# Whole degrees tried at scale 1, nearest first, when the lattice cannot be read (small or flat images).
ROTATIONS = tuple(sorted(range(-6, 7), key=abs))
# Then the common resizes, unturned: to 50% and 75%, 10% and 20% cropped off and scaled back, doubled.
SCALES = (0.5, 0.75, 1 / 0.9, 1 / 0.8, 2.0)
SCHEME = "aigc-image-v1"


def _seed(key: str, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{SCHEME}|{purpose}|{key}".encode()).digest()[:8], "little")


@lru_cache(maxsize=8)
def _layout(key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(payload bits [48] of 0/1, bit of each cell [24, 24], chip of each cell [24, 24] of +-1)."""
    payload = np.random.default_rng(_seed(key, "payload")).integers(0, 2, BITS)
    rng = np.random.default_rng(_seed(key, "layout"))
    owner = rng.permutation(np.arange(CELLS * CELLS) % BITS).reshape(CELLS, CELLS)
    chips = rng.choice([-1.0, 1.0], size=(CELLS, CELLS))
    return payload, owner, chips


def _smooth_tile(cells: np.ndarray) -> np.ndarray:
    """Cell values [24, 24] -> a periodic tile [96, 96], block-upsampled and softened."""
    tile = np.kron(cells, np.ones((CELL, CELL)))
    return ndimage.gaussian_filter(tile, sigma=1.0, mode="wrap")


@lru_cache(maxsize=8)
def _kernels(key: str) -> np.ndarray:
    """Per bit, the tile of its own cells with their chips (zero elsewhere): float [48, 96, 96]."""
    _, owner, chips = _layout(key)
    return np.stack([_smooth_tile(np.where(owner == bit, chips, 0.0)) for bit in range(BITS)])


@lru_cache(maxsize=8)
def _kernel_spectra(key: str) -> np.ndarray:
    return np.conj(np.fft.fft2(_kernels(key)))


def payload_of(key: str) -> np.ndarray:
    return _layout(key)[0].copy()


def _luminance(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float64)
    if image.ndim == 2:
        return image
    if image.shape[-1] == 1:
        return image[..., 0]
    return image[..., :3] @ np.array([0.299, 0.587, 0.114])


def embed(image: np.ndarray, key: str, strength: float = STRENGTH) -> np.ndarray:
    """`image` (uint8 [H, W] or [H, W, C]) with the key's mark added; same shape and dtype."""
    height, width = image.shape[:2]
    payload, owner, chips = _layout(key)
    tile = _smooth_tile(chips * np.where(payload[owner] == 1, 1.0, -1.0))
    tile /= np.sqrt(np.mean(tile**2))  # unit power, so STRENGTH is the RMS change
    pattern = np.tile(tile, (math.ceil(height / TILE), math.ceil(width / TILE)))[:height, :width]
    luminance = _luminance(image)
    texture = np.sqrt(ndimage.gaussian_filter((luminance - ndimage.gaussian_filter(luminance, 2.0)) ** 2, 4.0))
    mask = np.clip(texture / (np.median(texture) + 1e-6), 0.5, 2.0)  # busier areas hide more
    delta = strength * pattern * mask / np.sqrt(np.mean(mask**2))
    marked = image.astype(np.float64) + (delta[..., None] if image.ndim == 3 else delta)
    return np.clip(np.rint(marked), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ detection


@dataclass(frozen=True)
class ImageDetection:
    present: bool  # at most MAX_WRONG_BITS of 48 bits differ from the key's payload
    bits_correct: int  # of 48
    false_positive_bound: float  # chance of this many matching bits (or more) on an unmarked image
    scale: float  # the geometry the mark was found at (1.0 and 0.0: as made)
    rotation_degrees: float  # clockwise as seen (a counter-clockwise turn reads negative)
    sync: float  # how clearly the tile position stood out (peak over median of the shift energy)

    @property
    def bit_accuracy(self) -> float:
        return self.bits_correct / BITS


def _residual(luminance: np.ndarray) -> np.ndarray:
    high = luminance - ndimage.gaussian_filter(luminance, 2.0)
    return high / (np.sqrt(ndimage.gaussian_filter(high**2, 6.0)) + 2.0)


def _aligned(residual: np.ndarray, key: str) -> tuple[np.ndarray, float]:
    """(correlation of each bit at the best tile position [48], sync score) for a residual at scale 1."""
    height, width = residual.shape
    padded = np.zeros((math.ceil(height / TILE) * TILE, math.ceil(width / TILE) * TILE))
    padded[:height, :width] = residual
    folded = padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE).sum(axis=(0, 2))
    spectrum = np.fft.fft2(folded)
    kernels = _kernel_spectra(key)
    correlations = np.real(np.fft.ifft2(spectrum[None] * kernels))  # [48, 96, 96], by shift
    energy = (correlations**2).sum(axis=0)
    best = np.unravel_index(int(np.argmax(energy)), energy.shape)
    return correlations[:, best[0], best[1]], float(energy[best] / (np.median(energy) + 1e-12))


def _lattice(residual: np.ndarray) -> list[tuple[float, float]]:
    """(scale, rotation in radians) candidates from the autocorrelation peaks of the tiled mark."""
    centred = residual - residual.mean()
    power = np.abs(np.fft.fft2(centred)) ** 2
    autocorrelation = np.fft.fftshift(np.real(np.fft.ifft2(power)))
    cy, cx = autocorrelation.shape[0] // 2, autocorrelation.shape[1] // 2
    ys, xs = np.mgrid[-cy : autocorrelation.shape[0] - cy, -cx : autocorrelation.shape[1] - cx]
    radius, angle = np.hypot(ys, xs), np.degrees(np.arctan2(ys, xs))
    candidates = []
    for axis in (0.0, 90.0):  # the lattice's two directions, each within 20 degrees of its axis
        offset = (angle - axis + 180) % 360 - 180
        region = (radius >= 0.4 * TILE) & (radius <= 1.3 * TILE) & (np.abs(offset) <= 20)
        scores = np.where(region, autocorrelation, -np.inf)
        y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)
        candidates.append((math.hypot(ys[y, x], xs[y, x]) / TILE, math.radians(((math.degrees(math.atan2(ys[y, x], xs[y, x])) - axis + 180) % 360) - 180)))
    return candidates


def _unwarp(luminance: np.ndarray, scale: float, rotation: float) -> np.ndarray:
    """The image resampled back to the embedding geometry (undo a resize by `scale` and a turn by `rotation`)."""
    height, width = luminance.shape
    out_shape = (max(8, int(round(height / scale))), max(8, int(round(width / scale))))
    cos, sin = math.cos(rotation), math.sin(rotation)
    matrix = scale * np.array([[cos, sin], [-sin, cos]])  # output (row, col) -> input (row, col), about the centres
    centre_out, centre_in = (np.array(out_shape) - 1) / 2, (np.array(luminance.shape) - 1) / 2
    offset = centre_in - matrix @ centre_out
    return ndimage.affine_transform(luminance, matrix, offset=offset, output_shape=out_shape, order=1, mode="reflect")


def _tail(wrong: int) -> float:
    """P(at most `wrong` of 48 fair coins disagree)."""
    return sum(math.comb(BITS, k) for k in range(wrong + 1)) / 2**BITS


def detect(image: np.ndarray, key: str) -> ImageDetection:
    """Whether `image` (uint8 or float, [H, W] or [H, W, C]) carries the key's mark (module docstring).

    Geometries are tried in order (as made; then the lattice's estimate and its neighbours) until one
    reads as present; each try could be a false positive, so the bound is the tries times the binomial tail."""
    luminance = _luminance(image)
    payload = _layout(key)[0]
    tried: list[tuple[float, float, float, int]] = []  # (sync, scale, rotation, bits correct)

    def attempt(scale: float, rotation: float) -> bool:
        source = luminance if (scale, rotation) == (1.0, 0.0) else _unwarp(luminance, scale, rotation)
        values, sync = _aligned(_residual(source), key)
        correct = int(((values > 0).astype(int) == payload).sum())
        tried.append((sync, scale, rotation, correct))
        return BITS - correct <= MAX_WRONG_BITS

    found = attempt(1.0, 0.0)
    if not found:
        scale, rotation = _lattice(_residual(luminance))[0]
        neighbours = [(1.0, 0.0), (0.995, 0.0), (1.005, 0.0), (1.0, -0.004), (1.0, 0.004), (0.995, -0.004), (1.005, 0.004), (0.995, 0.004), (1.005, -0.004)]
        for ds, dr in neighbours:  # about 0.5 % of scale and a quarter degree either side
            if 0.3 <= scale * ds <= 3.0 and attempt(scale * ds, rotation + dr):
                found = True
                break
    for degrees in ROTATIONS if not found else ():
        if degrees and attempt(1.0, math.radians(degrees)):
            found = True
            break
    for scale in SCALES if not found else ():
        if attempt(scale, 0.0):
            found = True
            break
    sync, scale, rotation, correct = tried[-1] if found else max(tried)
    bound = min(1.0, len(tried) * _tail(BITS - correct))
    return ImageDetection(found, correct, bound, round(scale, 4), round(math.degrees(rotation), 2), round(sync, 2))


# ------------------------------------------------------------------------------------------ the pipeline hook


def reads_back(image: np.ndarray, key: str) -> bool:
    """Whether the key's mark reads back from `image` as it was made (scale 1, no turn): the check a
    composed picture's embedding uses to pick its strength."""
    values, _ = _aligned(_residual(_luminance(image)), key)
    return BITS - int(((values > 0).astype(int) == _layout(key)[0]).sum()) <= MAX_WRONG_BITS


# Strengths tried for a grid, weakest first: the borders between its images and the flat black or white
# backgrounds of small digits and emoji (where half of any change is clipped away) hide much of the mark.
GRID_STRENGTHS = (STRENGTH, 2 * STRENGTH, 3 * STRENGTH, 4 * STRENGTH)


@dataclass(frozen=True)
class ImageWatermark:
    """An artifact hook for `GenerationPolicy.after`: marks every image of an ImageBatch that is at least
    MIN_SIDE pixels on its shorter side, and records the scheme in the batch's parameters (so the PNG says
    it is marked); smaller images pass unchanged (they cannot hold the mark). A batch of several images
    also gets `mark_picture` as a picture hook, so the grid save_grid composes is marked as one picture."""

    key: str

    def __call__(self, artifact, request=None, info=None):
        import dataclasses

        from aigc.generation.outputs import ImageBatch

        if not isinstance(artifact, ImageBatch):
            return artifact
        hooks = (*artifact.picture_hooks, self.mark_picture) if len(artifact) > 1 else artifact.picture_hooks
        if min(artifact.images.shape[1:3]) < MIN_SIDE:
            return artifact if len(artifact) == 1 else dataclasses.replace(artifact, picture_hooks=hooks)
        marked = np.stack([embed(image, self.key) for image in artifact.images])
        return dataclasses.replace(artifact, images=marked, parameters={**artifact.parameters, "watermark": SCHEME}, picture_hooks=hooks)

    def mark_picture(self, picture: np.ndarray, parameters: dict) -> tuple[np.ndarray, dict]:
        """A composed picture (a grid) of at least MIN_SIDE pixels, marked as one image at the weakest of
        GRID_STRENGTHS that reads back (its images' own marks, if any, sit at other offsets and do not make
        the grid readable); left unmarked, and not labelled so, when none does."""
        if min(picture.shape[:2]) < MIN_SIDE:
            return picture, parameters
        for strength in GRID_STRENGTHS:
            marked = embed(picture, self.key, strength)
            if reads_back(marked, self.key):
                return marked, {**parameters, "watermark": SCHEME, "grid_watermark_strength": strength}
        return picture, parameters
