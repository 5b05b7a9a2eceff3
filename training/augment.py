"""Training-time augmentation, written as one affine warp plus cheap colour jitter.

Flips, rotation (up to 30 degrees), zoom (20 percent) and translation (10 percent) are
composed into a single projective transform per image, so each batch is resampled
once; brightness, contrast, saturation and per-channel gain are arithmetic. On two CPU
cores this costs a fraction of what the equivalent chain of Keras layers does.
"""

from __future__ import annotations

import math

import tensorflow as tf

MAX_ROTATION_DEGREES = 30.0
ZOOM = 0.2
TRANSLATION = 0.1
BRIGHTNESS = 0.15  # fraction of the 0-255 range
CONTRAST = 0.2
SATURATION = 0.3
CHANNEL_GAIN = 0.05


def _uniform(batch, low, high, extra_shape=()):
    return tf.random.uniform((batch, *extra_shape), low, high)


def _warp(images: tf.Tensor, a0, a1, b0, b1, shift_x, shift_y) -> tf.Tensor:
    """Resample each image once: output pixel (x, y) samples input pixel
    [[a0, a1], [b0, b1]] @ ((x, y) - centre) + centre + shift (reflected at the edges)."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    cx, cy = (tf.cast(width, tf.float32) - 1.0) / 2.0, (tf.cast(height, tf.float32) - 1.0) / 2.0
    a2 = cx - (a0 * cx + a1 * cy) + shift_x
    b2 = cy - (b0 * cx + b1 * cy) + shift_y
    zeros = tf.zeros_like(a0)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1),
        output_shape=tf.stack([height, width]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _colour_jitter(images: tf.Tensor, channel_gain: float) -> tf.Tensor:
    """Brightness, contrast, saturation and a per-channel gain (a colour cast), clipped to [0, 255]."""
    batch = tf.shape(images)[0]
    brightness = _uniform(batch, -BRIGHTNESS, BRIGHTNESS, (1, 1, 1)) * 255.0
    contrast = _uniform(batch, 1.0 - CONTRAST, 1.0 + CONTRAST, (1, 1, 1))
    saturation = _uniform(batch, 1.0 - SATURATION, 1.0 + SATURATION, (1, 1, 1))
    gain = _uniform(batch, 1.0 - channel_gain, 1.0 + channel_gain, (1, 1, 3))
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    out = (images - mean) * contrast + mean + brightness
    gray = tf.reduce_sum(out * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
    out = (out - gray) * saturation + gray
    return tf.clip_by_value(out * gain, 0.0, 255.0)


def augment_batch(images: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
    """Augment a float32 batch of [0, 255] pixels, shape (B, H, W, 3)."""
    shape = tf.shape(images)
    batch, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    angle = _uniform(batch, -MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES) * (math.pi / 180.0)
    zoom = _uniform(batch, 1.0 - ZOOM, 1.0 + ZOOM)
    flip_x = tf.where(_uniform(batch, 0.0, 1.0) < 0.5, -1.0, 1.0)
    flip_y = tf.where(_uniform(batch, 0.0, 1.0) < 0.5, -1.0, 1.0)
    shift_x = _uniform(batch, -TRANSLATION, TRANSLATION) * w
    shift_y = _uniform(batch, -TRANSLATION, TRANSLATION) * h
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    warped = _warp(images, cos * flip_x, -sin * flip_y, sin * flip_x, cos * flip_y, shift_x, shift_y)
    return _colour_jitter(warped, CHANNEL_GAIN)


# The stronger recipe: any orientation (a lesion photographed through a dermatoscope has no
# "up"), larger and anisotropic crops, stronger colour casts, and hair-like occlusions.
STRONG_ROTATION_DEGREES = 180.0
STRONG_ZOOM = (0.8, 1.3)  # > 1 magnifies: a random resized crop
STRONG_ASPECT = 0.15
STRONG_CHANNEL_GAIN = 0.12
HAIR_PROBABILITY = 0.5
HAIRS_MAX = 4


def hair_occlusions(images: tf.Tensor) -> tf.Tensor:
    """Draw up to HAIRS_MAX dark, thin, straight hairs across about half of the images."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    ys, xs = tf.meshgrid(tf.range(h), tf.range(w), indexing="ij")  # (H, W)
    ys, xs = ys[None, None], xs[None, None]

    def uniform(low, high):
        return tf.random.uniform((batch, HAIRS_MAX, 1, 1), low, high)

    x0, y0 = uniform(0.0, 1.0) * w, uniform(0.0, 1.0) * h
    x1, y1 = uniform(0.0, 1.0) * w, uniform(0.0, 1.0) * h
    dx, dy = x1 - x0, y1 - y0
    t = tf.clip_by_value(((xs - x0) * dx + (ys - y0) * dy) / tf.maximum(dx * dx + dy * dy, 1.0), 0.0, 1.0)
    distance = tf.sqrt((xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2)
    half_width = uniform(0.4, 1.3)
    present = tf.cast(uniform(0.0, 1.0) < 0.6, tf.float32) * tf.cast(
        tf.random.uniform((batch, 1, 1, 1)) < HAIR_PROBABILITY, tf.float32
    )
    alpha = tf.reduce_max(tf.clip_by_value(half_width + 0.5 - distance, 0.0, 1.0) * present, axis=1)  # (B, H, W)
    colour = tf.random.uniform((batch, 1, 1, 1), 10.0, 70.0) * tf.constant([1.0, 0.8, 0.7])
    return images * (1.0 - alpha[..., None]) + colour * alpha[..., None]


def augment_batch_strong(images: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
    """The stronger recipe (``training.train --augment strong``) on a float32 (B, H, W, 3) batch."""
    shape = tf.shape(images)
    batch, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    angle = _uniform(batch, -STRONG_ROTATION_DEGREES, STRONG_ROTATION_DEGREES) * (math.pi / 180.0)
    zoom = _uniform(batch, *STRONG_ZOOM)
    aspect = _uniform(batch, 1.0 - STRONG_ASPECT, 1.0 + STRONG_ASPECT)
    zoom_x, zoom_y = zoom * tf.sqrt(aspect), zoom / tf.sqrt(aspect)
    flip_x = tf.where(_uniform(batch, 0.0, 1.0) < 0.5, -1.0, 1.0)
    shift_x = _uniform(batch, -TRANSLATION, TRANSLATION) * w
    shift_y = _uniform(batch, -TRANSLATION, TRANSLATION) * h
    cos, sin = tf.cos(angle), tf.sin(angle)
    warped = _warp(images, cos * flip_x / zoom_x, -sin / zoom_y, sin * flip_x / zoom_x, cos / zoom_y, shift_x, shift_y)
    return _colour_jitter(hair_occlusions(warped), STRONG_CHANNEL_GAIN)


# The capture recipe: the standard warp and colour jitter, then what a phone or another camera
# does to the pixels. Of training.shifts' mild shifts, phone sharpening costs the referral
# thresholds most specificity on validation (training.operating_point compare-thresholds).
# Drawn at the network's input size: the sharpening amounts cover the stress test's mild
# sharpening (about 0.9 of this 3x3 unsharp mask), not its strong one (about 4.6); the noise
# covers both (about 1.5 and 4 grey levels once the photo is resized). Each photo is sharpened
# or (some of the rest) softened, and noise is drawn on its own.
SHARPEN_PROBABILITY = 0.5
SHARPEN_AMOUNT = (0.3, 2.0)  # unsharp mask: out = image + amount * (image - blurred)
NOISE_PROBABILITY = 0.5
NOISE_SD = (0.5, 6.0)  # grey levels
SOFTEN_PROBABILITY = 0.15  # the opposite: a slightly soft photo (a phone's own denoising)


def _blurred(images: tf.Tensor) -> tf.Tensor:
    """A 3x3 binomial blur per channel (about a Gaussian of sigma 0.7), reflected at the edges."""
    kernel_1d = tf.constant([0.25, 0.5, 0.25])
    kernel = tf.tensordot(kernel_1d, kernel_1d, axes=0)[:, :, None, None] * tf.ones((1, 1, 3, 1))
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, strides=[1, 1, 1, 1], padding="VALID")


def capture_artefacts(images: tf.Tensor) -> tf.Tensor:
    """Phone sharpening, sensor noise or a soft photo on a random share of a [0, 255] batch."""
    batch = tf.shape(images)[0]

    def chosen(probability):
        return tf.cast(tf.random.uniform((batch, 1, 1, 1)) < probability, tf.float32)

    blurred = _blurred(images)
    amount = tf.random.uniform((batch, 1, 1, 1), *SHARPEN_AMOUNT) * chosen(SHARPEN_PROBABILITY)
    soften = chosen(SOFTEN_PROBABILITY) * (1.0 - tf.cast(amount > 0, tf.float32))
    out = images + amount * (images - blurred) + soften * (blurred - images)
    sd = tf.random.uniform((batch, 1, 1, 1), *NOISE_SD) * chosen(NOISE_PROBABILITY)
    out = out + tf.random.normal(tf.shape(images)) * sd
    return tf.clip_by_value(out, 0.0, 255.0)


def augment_batch_capture(images: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
    """The capture recipe (``training.train --augment capture``) on a float32 (B, H, W, 3) batch."""
    return capture_artefacts(augment_batch(images, seed))


# training.train --augment NAME
RECIPES = {"standard": augment_batch, "strong": augment_batch_strong, "capture": augment_batch_capture}
