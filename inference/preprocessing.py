"""The one preprocessing path shared by training and serving.

Training caches the output of :func:`model_pixels` for every HAM10000 image and serving
calls the same function on every uploaded photo, so the model sees the same pixels in
both places. Pixel scaling to [-1, 1] lives inside the exported model itself, so this
module only does geometry: orientation, aspect ratio and size.

Imports neither TensorFlow nor Django.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

# The classes live in inference.classes; imported here too, where the model's input is defined.
from inference.classes import CLASS_NAMES, CLASSES, MALIGNANT_CLASSES  # noqa: F401

# HAM10000 images are 4:3 landscape; every input is brought to that shape first.
ASPECT_RATIO = 4 / 3
DEFAULT_INPUT_SIZE = 224
SPEC_NAME = "landscape-center-crop-4x3-bilinear-v1"


def load_image(source: str | Path | BinaryIO) -> Image.Image:
    """Decode an image file, apply its EXIF orientation and return it as RGB."""
    with Image.open(source) as image:
        image = ImageOps.exif_transpose(image)
        return image.convert("RGB")


def canonical_view(image: Image.Image) -> Image.Image:
    """Turn portrait photos to landscape and centre-crop to the 4:3 shape of the training data."""
    if image.height > image.width:
        image = image.transpose(Image.Transpose.ROTATE_90)
    width, height = image.size
    view_width, view_height = canonical_view_size(width, height)
    left, top = (width - view_width) // 2, (height - view_height) // 2
    if (view_width, view_height) != (width, height):
        image = image.crop((left, top, left + view_width, top + view_height))
    return image


def canonical_view_size(width: int, height: int) -> tuple[int, int]:
    """The (width, height) of ``canonical_view`` of a photo of this size, without making it."""
    if height > width:
        width, height = height, width
    if width / height > ASPECT_RATIO:
        return round(height * ASPECT_RATIO), height
    if width / height < ASPECT_RATIO:
        return width, round(width / ASPECT_RATIO)
    return width, height


def model_pixels(image: Image.Image, size: int = DEFAULT_INPUT_SIZE) -> np.ndarray:
    """Return the (size, size, 3) uint8 array the model is fed, before its own scaling."""
    view = canonical_view(image.convert("RGB"))
    resized = view.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def spec(size: int = DEFAULT_INPUT_SIZE) -> dict:
    """Describe this preprocessing for the artifact manifest (checked at load time)."""
    return {
        "name": SPEC_NAME,
        "input_size": size,
        "input_dtype": "float32",
        "input_range": [0, 255],
        "scaling": "inside the model: x / 127.5 - 1",
    }
