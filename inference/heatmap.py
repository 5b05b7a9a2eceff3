"""The evidence overlay: a class activation map drawn over the photo the model saw.

The map comes from :meth:`inference.predictor.Predictor.predict_pixels` (exact CAM for a
global-average-pooling + dense head). It covers the *canonical view* of the photo
(turned to landscape and centre-cropped to 4:3 by :mod:`inference.preprocessing`), so
the overlay is drawn on that view, not on the uploaded frame, and lines up with what
the model was shown. Colour strength follows the activation, so regions that gave no
evidence keep the photo's own colours. Imports no Django.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from inference.preprocessing import canonical_view, canonical_view_size

MAX_SIDE = 640  # big enough to read on a tablet, small enough to store for every photo
MAX_ALPHA = 0.6

# A blue-cyan-yellow-red ramp ("jet"-like): the colours clinicians know from heatmaps.
_POSITIONS = np.array([0.0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32)
_COLOURS = np.array([(0, 0, 128), (0, 96, 255), (0, 224, 224), (255, 224, 0), (224, 0, 0)], dtype=np.float32)
LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), _POSITIONS, _COLOURS[:, channel]) for channel in range(3)], axis=1
).astype(np.float32)
LUT_LEVELS = np.round(LUT).astype(np.uint8)  # the same colours as 8-bit levels, for the layer


def overlay(image: Image.Image, activation_map: np.ndarray, *, max_side: int = MAX_SIDE) -> Image.Image:
    """The canonical view of ``image`` with ``activation_map`` ((h, w) in [0, 1]) blended on it."""
    view = canonical_view(image.convert("RGB"))
    if max(view.size) > max_side:
        scale = max_side / max(view.size)
        view = view.resize((round(view.width * scale), round(view.height * scale)), Image.Resampling.BILINEAR)
    cam = np.clip(np.asarray(activation_map, dtype=np.float32), 0.0, 1.0)
    cam_image = Image.fromarray(cam, mode="F").resize(view.size, Image.Resampling.BILINEAR)
    cam = np.clip(np.asarray(cam_image, dtype=np.float32), 0.0, 1.0)
    colours = LUT[np.round(cam * 255).astype(np.uint8)]
    alpha = (MAX_ALPHA * cam)[..., None]
    photo = np.asarray(view, dtype=np.float32)
    blended = photo * (1 - alpha) + colours * alpha
    return Image.fromarray(np.round(blended).astype(np.uint8), mode="RGB")


def overlay_png(image: Image.Image, activation_map: np.ndarray, *, max_side: int = MAX_SIDE) -> bytes:
    """:func:`overlay` encoded as PNG bytes, ready to store."""
    buffer = io.BytesIO()
    # Fast zlib level: the overlay is photographic, so higher levels cost ~5x the time for ~10% smaller files.
    overlay(image, activation_map, max_side=max_side).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


LAYER_QUALITY = 70
# libwebp's effort (0-6): 0 encodes about eight times faster than 4 (1.2 against 10 ms for a
# 200x150 layer on the 2-core machine) for files about a fifth larger (6 KB; 19 KB at 640 px):
# this is worker time on every photo, and the layer is a smooth map.
LAYER_METHOD = 0


def overlay_layer(image: Image.Image, activation_map: np.ndarray, *, max_side: int = MAX_SIDE) -> Image.Image:
    """The evidence as a transparent RGBA layer over the whole upright photo, at display size.

    The map covers the canonical view (turned to landscape, centre-cropped to 4:3); here it is
    turned and placed back where that view lies in the photo, so a viewer can lay the layer
    over the photo itself and change its opacity. Outside the view the layer is transparent.
    """
    width, height = image.size
    portrait = height > width
    turned = (height, width) if portrait else (width, height)
    view_width, view_height = canonical_view_size(width, height)
    left, top = (turned[0] - view_width) // 2, (turned[1] - view_height) // 2
    scale = min(1.0, max_side / max(width, height))
    layer_size = (max(1, round(turned[0] * scale)), max(1, round(turned[1] * scale)))
    box = (
        round(left * scale),
        round(top * scale),
        round((left + view_width) * scale),
        round((top + view_height) * scale),
    )
    cam = np.clip(np.asarray(activation_map, dtype=np.float32), 0.0, 1.0)
    box_size = (max(1, box[2] - box[0]), max(1, box[3] - box[1]))
    cam = np.clip(np.asarray(Image.fromarray(cam, mode="F").resize(box_size, Image.Resampling.BILINEAR)), 0.0, 1.0)
    rgba = np.zeros((layer_size[1], layer_size[0], 4), dtype=np.uint8)
    region = rgba[box[1] : box[1] + box_size[1], box[0] : box[0] + box_size[0]]
    # The colour of each level, and the level itself as the opacity: one look-up, no float image.
    level = np.round(cam * 255).astype(np.uint8)[: region.shape[0], : region.shape[1]]
    region[..., :3] = LUT_LEVELS[level]
    region[..., 3] = level
    layer = Image.fromarray(rgba, mode="RGBA")
    if portrait:  # canonical_view turned the photo with ROTATE_90; turn the layer back
        layer = layer.transpose(Image.Transpose.ROTATE_270)
    return layer


def overlay_layer_webp(image: Image.Image, activation_map: np.ndarray, *, max_side: int = MAX_SIDE) -> bytes:
    """:func:`overlay_layer` as lossy WebP with alpha: a few kilobytes instead of a full-size PNG."""
    buffer = io.BytesIO()
    overlay_layer(image, activation_map, max_side=max_side).save(
        buffer, format="WEBP", quality=LAYER_QUALITY, alpha_quality=60, method=LAYER_METHOD
    )
    return buffer.getvalue()
