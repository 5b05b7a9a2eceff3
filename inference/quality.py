"""Cheap image-quality measures on the pixels the model is fed (no Django, no TensorFlow).

They are computed on the (S, S, 3) uint8 array from :func:`inference.preprocessing.model_pixels`,
which is what the model reads: a photo that is sharp at that resolution is sharp enough for
the model, and one that is not cannot be rescued by the pixels it lost in resizing.

- ``luma_mean``: mean luminance (ITU-R BT.601 weights), 0-255; a photo taken in too little light is low.
- ``dark_fraction``: share of pixels with luminance below 16 (crushed to black).
- ``clipped_fraction``: share of pixels with any channel at 250 or above (blown highlights).
- ``blur``: the no-reference blur measure of Crete et al. (2007) on the luminance of the central
  half of the view (where the lesion is framed): how little the variation between neighbouring
  pixels drops when the image is blurred again with an 11-pixel box filter, 0 (sharp) to 1
  (blurred). It judges a photo against a blurred copy of itself, so it does not mistake a
  smooth, low-texture lesion for a blurred one the way a raw Laplacian variance does (on
  HAM10000 the Laplacian variance of sharp photos and of photos blurred by 2% of their height
  overlapped; this measure separates them). On a photo blurred so much that almost nothing is
  left, the quantisation steps of 8-bit pixels start to look like detail to it, so
- ``detail``: the mean absolute difference between neighbouring luminance values over the same
  central half, in grey levels, catches those: a photo with next to no detail is turned back too.

All measures take well under a millisecond at 224 x 224.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
DARK_LEVEL = 16
CLIP_LEVEL = 250
BLUR_FILTER = 11  # pixels of the box filter the photo is blurred again with


@dataclass(frozen=True)
class Quality:
    luma_mean: float
    dark_fraction: float
    clipped_fraction: float
    blur: float
    detail: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


NAMES: tuple[str, ...] = ("luma_mean", "dark_fraction", "clipped_fraction", "blur", "detail")


def luminance(pixels: np.ndarray) -> np.ndarray:
    # Channel by channel, not a matrix product: no multi-threaded BLAS call on a busy worker.
    rgb = np.asarray(pixels)
    r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
    return LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b


def central(array: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """The central ``fraction`` of each side of a 2-D array."""
    h, w = array.shape[:2]
    dh, dw = int(round(h * (1 - fraction) / 2)), int(round(w * (1 - fraction) / 2))
    return array[dh : h - dh, dw : w - dw]


def box_filter(array: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Mean over ``size`` neighbours along one axis of a 2-D array (edges repeated)."""
    pad = [(size // 2 + 1, size // 2) if ax == axis else (0, 0) for ax in range(2)]
    total = np.cumsum(np.pad(array, pad, mode="edge"), axis=axis, dtype=np.float64)
    if axis == 0:
        return (total[size:] - total[:-size]) / size
    return (total[:, size:] - total[:, :-size]) / size


def _box_filter_steps(luma: np.ndarray, size: int, axis: int) -> np.ndarray:
    """``np.diff(box_filter(luma, size, axis), axis=axis)`` without the running sum.

    Moving the window by one pixel adds the value entering it and drops the one leaving, so
    each step of the box-filtered image is (entering - leaving) / size of the edge-padded one.
    """
    pad = [(size // 2 + 1, size // 2) if ax == axis else (0, 0) for ax in range(2)]
    padded = np.pad(luma, pad, mode="edge")
    if axis == 0:
        return (padded[size + 1 :] - padded[1:-size]) / size
    return (padded[:, size + 1 :] - padded[:, 1:-size]) / size


def _steps(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute differences between neighbouring values, along axis 0 and along axis 1."""
    return np.abs(np.diff(luma, axis=0)), np.abs(np.diff(luma, axis=1))


def blur_effect(luma: np.ndarray, size: int = BLUR_FILTER, steps=None) -> float:
    """Crete et al. 2007: 0 for a sharp image, towards 1 for a blurred one (the larger of both axes)."""
    luma = np.asarray(luma, dtype=np.float64)
    values = []
    for axis, d_image in enumerate(steps if steps is not None else _steps(luma)):
        d_reblurred = np.abs(_box_filter_steps(luma, size, axis))
        variation = d_image.sum()
        kept = np.maximum(0.0, d_image - d_reblurred).sum()
        if variation > 0:  # an axis along which nothing changes says nothing about focus
            values.append((variation - kept) / variation)
    return float(max(values)) if values else 1.0


def detail(luma: np.ndarray, steps=None) -> float:
    """Mean absolute difference between neighbouring values of a 2-D array, both axes."""
    down, across = steps if steps is not None else _steps(np.asarray(luma, dtype=np.float64))
    return float((down.mean() + across.mean()) / 2)


def measure(pixels: np.ndarray) -> Quality:
    """The quality measures of one (H, W, 3) uint8 image."""
    pixels = np.asarray(pixels)
    luma = luminance(pixels)
    centre = central(luma).astype(np.float64)
    steps = _steps(centre)  # shared by the blur and detail measures
    return Quality(
        luma_mean=float(luma.mean()),
        dark_fraction=float((luma < DARK_LEVEL).mean()),
        clipped_fraction=float(
            (np.maximum(np.maximum(pixels[..., 0], pixels[..., 1]), pixels[..., 2]) >= CLIP_LEVEL).mean()
        ),
        blur=blur_effect(centre, steps=steps),
        detail=detail(centre, steps=steps),
    )
