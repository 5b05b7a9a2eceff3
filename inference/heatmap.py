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


# The layer is one 8-bit level per pixel (the activation): its colour and its opacity are both a
# function of that level, so it is stored as an indexed PNG whose palette carries them (PLTE and
# tRNS). The levels are kept in steps of LAYER_STEP (64 levels; an opacity error of at most 2/255,
# invisible on a smooth map). It is written in about a sixth of the time of the lossy WebP layer
# it replaces (0.6 against 3.9 ms for a 200x150 photo, 5 against 27 ms at 640 px, on the 2-core
# machine: python -m benchmarks.heatmap_layer), on every photo, for files about twice the size
# (7 KB against 3.5 KB; 30 against 12 KB at 640 px), small beside the photo itself.
LAYER_STEP = 4
LAYER_PALETTE = LUT_LEVELS.tobytes()
LAYER_OPACITY = bytes(range(256))


def layer_levels(image: Image.Image, activation_map: np.ndarray, *, max_side: int = MAX_SIDE) -> np.ndarray:
    """The evidence level (0-255, 0 where there is none) of each pixel of the layer over ``image``.

    The map covers the canonical view (turned to landscape, centre-cropped to 4:3); here it is
    turned and placed back where that view lies in the photo, so a viewer can lay the layer
    over the photo itself and change its opacity. Outside the view the level is 0 (transparent).
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
    levels = np.zeros((layer_size[1], layer_size[0]), dtype=np.uint8)
    region = levels[box[1] : box[1] + box_size[1], box[0] : box[0] + box_size[0]]
    region[...] = np.round(cam * 255).astype(np.uint8)[: region.shape[0], : region.shape[1]]
    if portrait:  # canonical_view turned the photo with ROTATE_90; turn the layer back
        levels = np.ascontiguousarray(np.rot90(levels, k=-1))
    return levels


def overlay_layer(image: Image.Image, activation_map: np.ndarray, *, max_side: int = MAX_SIDE) -> Image.Image:
    """The evidence as a transparent RGBA layer over the whole upright photo, at display size:
    each level's colour from the ramp, the level itself as the opacity (see :func:`layer_levels`)."""
    level = layer_levels(image, activation_map, max_side=max_side)
    rgba = np.empty((*level.shape, 4), dtype=np.uint8)
    rgba[..., :3] = LUT_LEVELS[level]
    rgba[..., 3] = level
    return Image.fromarray(rgba, mode="RGBA")


def overlay_layer_png(image: Image.Image, activation_map: np.ndarray, *, max_side: int = MAX_SIDE) -> bytes:
    """:func:`overlay_layer` as an indexed PNG with transparency (64 levels), ready to store."""
    level = layer_levels(image, activation_map, max_side=max_side)
    # Steps of LAYER_STEP, each at its middle; no evidence stays 0 (fully transparent).
    stepped = np.where(level > 0, level // LAYER_STEP * LAYER_STEP + LAYER_STEP // 2, 0).astype(np.uint8)
    indexed = Image.frombytes("P", (level.shape[1], level.shape[0]), stepped.tobytes())
    indexed.putpalette(LAYER_PALETTE)
    buffer = io.BytesIO()
    indexed.save(buffer, format="PNG", compress_level=1, transparency=LAYER_OPACITY)
    return buffer.getvalue()


def is_layer(data: bytes) -> bool:
    """Whether stored heatmap bytes are a transparent layer (an indexed PNG with transparency or
    an RGBA PNG, or WebP from earlier versions) rather than the photo with the map blended in (an
    opaque PNG)."""
    if data[:4] == b"RIFF":
        return True
    # PNG: the signature (8 bytes), then the IHDR chunk; its colour type is byte 25.
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) <= 25:
        return False
    if data[25] in (4, 6):  # grey or colour with an alpha channel
        return True
    if data[25] != 3:
        return False
    # An indexed PNG is a layer when its palette has opacities: a tRNS chunk before the image data.
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        position += 12 + length
    return False
