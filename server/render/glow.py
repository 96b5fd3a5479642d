"""The glow: each region of the layout lit by the mean light of the neurons in it. Pure numpy.

Neurons are small; the space between them is most of the picture. The glow fills it: the
neurons' lights are splatted into a grid an eighth of the picture's size, blurred (Gaussian,
about four neuron spacings wide), divided by the blurred neuron density (so a region shows its
neurons' mean light, not their count) and faded out where there are no neurons. The GL side
upsamples it with linear filtering (the blit program), so the cost per frame is a bincount and a
small blur on the CPU and one texture read per pixel.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft2, next_fast_len, rfft2

SCALE = 8
"""Picture pixels per glow pixel along each axis."""


class Glow:
    """The glow map of one layout on one picture size.

    ``fx``, ``fy`` (n,): each neuron's place as fractions of the picture (y down);
    ``spacing_px``: the distance between neighbouring neurons in picture pixels.
    """

    def __init__(self, fx: np.ndarray, fy: np.ndarray, width: int, height: int, spacing_px: float) -> None:
        self.shape = (max(1, -(-height // SCALE)), max(1, -(-width // SCALE)))
        gh, gw = self.shape
        ix = np.clip((np.asarray(fx) * gw).astype(np.int64), 0, gw - 1)
        iy = np.clip((np.asarray(fy) * gh).astype(np.int64), 0, gh - 1)
        # Row 0 of a GL texture is the bottom of the picture.
        self.index = (gh - 1 - iy) * gw + ix
        self.sigma = max(1.0, 4.0 * spacing_px / SCALE)
        # The blur as one FFT product (scipy's FFT runs on one thread unless asked; BLAS products would wake
        # BLAS threads that fight the rasteriser's): zero-padded, so the same numbers as
        # gaussian_filter with mode="constant", and the same cost however wide the blur.
        reach = int(4.0 * self.sigma + 0.5)  # gaussian_filter's default truncation
        taps = np.exp(-0.5 * (np.arange(-reach, reach + 1) / self.sigma) ** 2)
        taps /= taps.sum()
        self._fft_shape = (next_fast_len(gh + 2 * reach, real=True), next_fast_len(gw + 2 * reach, real=True))
        self._reach = reach
        self._kernel = rfft2(np.outer(taps, taps).astype(np.float32), s=self._fft_shape)
        counts = np.bincount(self.index, minlength=gh * gw).astype(np.float32)
        density = self._blur(counts)
        # "As dense as usual": the median where neurons are, not over the blur's long tails (a
        # tail-weighted median would saturate the presence out to where the blur stops, a hard edge).
        inside = density.reshape(-1)[counts > 0]
        typical = float(np.median(inside)) if inside.size else 1.0
        self.density = np.maximum(density, 1e-6 * typical)
        # Full glow where neurons are as dense as usual, fading to none far from any.
        self.presence = np.clip(density / (0.2 * typical), 0.0, 1.0).astype(np.float32)

    def _blur(self, flat: np.ndarray) -> np.ndarray:
        gh, gw = self.shape
        r = self._reach
        image = flat.reshape(self.shape).astype(np.float32)
        full = irfft2(rfft2(image, s=self._fft_shape) * self._kernel, s=self._fft_shape)
        return full[r : r + gh, r : r + gw].astype(np.float32)

    def __call__(self, light: np.ndarray) -> np.ndarray:
        """(n,) lights in [0, 1] -> (rows, cols) float32 glow in [0, 1], bottom row first."""
        splat = np.bincount(self.index, weights=light, minlength=self.density.size).astype(np.float32)
        mean = self._blur(splat) / self.density
        return np.clip(mean * self.presence, 0.0, 1.0)
