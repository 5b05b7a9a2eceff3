"""Realistic changes in how a lesion photo is taken, at a mild and a strong strength.

Each shift takes a photo as it arrives (a PIL image, before the shared preprocessing) and
returns the photo as another camera, light or phone would have delivered it. They are used
twice, never on the test split for a choice:

- ``training.operating_point`` scores the *validation* photos under every mild shift and
  places the referral thresholds so that they hold there too;
- ``training.stress`` scores the *test* split under every shift and prints the referral
  figures, so a reader sees how far they move.

Strengths (documented on the Model page and in the report):

| shift | mild | strong |
| --- | --- | --- |
| white balance, warm and cool | red/blue gain x1.08 / x0.92 | x1.20 / x0.80 |
| colour cast, green and magenta | green gain x1.08, or red and blue x1.06 | x1.18, or x1.15 |
| vignette (another dermatoscope) | corners 25% darker | corners 55% darker |
| uneven lighting | a side-to-side ramp of +-15% | +-35% |
| JPEG recompression | quality 80 | quality 60 |
| scale, closer and further | 1.12 / 0.9 | 1.25 / 0.8 |
| rotation | 15 degrees | 40 degrees |
| sensor noise | Gaussian, sd 2 grey levels (a phone in good light, after its own denoising) | sd 6 (dim light) |
| phone sharpening | unsharp mask radius 1, 80% | radius 2, 200% |

Imports neither TensorFlow nor Django.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Shift = Callable[[Image.Image, np.random.Generator], Image.Image]


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _image(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))


def _linear(array: np.ndarray) -> np.ndarray:
    return (array / 255.0) ** 2.2


def _display(linear: np.ndarray) -> np.ndarray:
    return 255.0 * np.clip(linear, 0.0, 1.0) ** (1 / 2.2)


def gains(red: float, green: float, blue: float) -> Shift:
    """Channel gains in linear light: a white balance or a colour cast."""

    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        linear = _linear(_array(image)) * np.array([red, green, blue], dtype=np.float32)
        return _image(_display(linear))

    return apply


def vignette(strength: float) -> Shift:
    """Light falling off towards the corners, as through another dermatoscope's optics."""

    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        array = _array(image)
        h, w = array.shape[:2]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((x - (w - 1) / 2) / (w / 2)) ** 2 + ((y - (h - 1) / 2) / (h / 2)) ** 2
        falloff = 1.0 - strength * np.clip(r2 / 2.0, 0.0, 1.0)
        return _image(_display(_linear(array) * falloff[..., None]))

    return apply


def uneven_light(amplitude: float) -> Shift:
    """A side-to-side ramp of illumination (a lamp to one side)."""

    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        array = _array(image)
        w = array.shape[1]
        ramp = 1.0 + amplitude * np.linspace(-1.0, 1.0, w, dtype=np.float32)
        return _image(_display(_linear(array) * ramp[None, :, None]))

    return apply


def jpeg(quality: int) -> Shift:
    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert("RGB")

    return apply


def scale(factor: float) -> Shift:
    """The camera closer (factor > 1: the lesion larger, the edges cropped) or further away
    (factor < 1: the lesion smaller, with more of the surrounding skin, mirrored at the edges)."""

    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = image.size
        if factor >= 1:
            cw, ch = round(w / factor), round(h / factor)
            left, top = (w - cw) // 2, (h - ch) // 2
            return image.crop((left, top, left + cw, top + ch)).resize((w, h), Image.Resampling.BICUBIC)
        small = image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BICUBIC)
        array = np.asarray(small.convert("RGB"))
        pad_y, pad_x = h - array.shape[0], w - array.shape[1]
        padded = np.pad(
            array, ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2), (0, 0)), mode="reflect"
        )
        return Image.fromarray(padded)

    return apply


def rotate(degrees: float) -> Shift:
    """A rotation, the corners filled by mirroring so no black wedge appears."""

    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = image.size
        pad = max(w, h) // 2
        array = np.pad(np.asarray(image.convert("RGB")), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        turned = Image.fromarray(array).rotate(degrees, resample=Image.Resampling.BILINEAR)
        return turned.crop((pad, pad, pad + w, pad + h))

    return apply


def noise(sd: float) -> Shift:
    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        array = _array(image)
        return _image(array + rng.normal(0.0, sd, array.shape).astype(np.float32))

    return apply


def sharpen(radius: float, percent: int) -> Shift:
    def apply(image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return image.convert("RGB").filter(ImageFilter.UnsharpMask(radius=radius, percent=percent, threshold=2))

    return apply


# name -> (mild, strong)
SHIFTS: dict[str, tuple[Shift, Shift]] = {
    "white_balance_warm": (gains(1.08, 1.0, 0.92), gains(1.20, 1.0, 0.80)),
    "white_balance_cool": (gains(0.92, 1.0, 1.08), gains(0.80, 1.0, 1.20)),
    "cast_green": (gains(1.0, 1.08, 1.0), gains(1.0, 1.18, 1.0)),
    "cast_magenta": (gains(1.06, 1.0, 1.06), gains(1.15, 1.0, 1.15)),
    "vignette": (vignette(0.25), vignette(0.55)),
    "uneven_light": (uneven_light(0.15), uneven_light(0.35)),
    "jpeg": (jpeg(80), jpeg(60)),
    "scale_closer": (scale(1.12), scale(1.25)),
    "scale_further": (scale(0.9), scale(0.8)),
    "rotation": (rotate(15), rotate(40)),
    "sensor_noise": (noise(2.0), noise(6.0)),
    "sharpening": (sharpen(1, 80), sharpen(2, 200)),
}
STRENGTHS = ("mild", "strong")


def shifted(image: Image.Image, name: str, strength: str, seed: int = 0) -> Image.Image:
    """``image`` under shift ``name`` at ``strength`` ("mild" or "strong"); reproducible by ``seed``."""
    mild, strong = SHIFTS[name]
    return (mild if strength == "mild" else strong)(image, np.random.default_rng(seed))
