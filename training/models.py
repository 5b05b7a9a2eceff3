"""Network definitions: MobileNetV2 transfer learning and the LeNet-5 / AlexNet baselines.

Every model takes float32 pixels in [0, 255] (``inference.preprocessing.model_pixels``)
and does its own scaling, so serving never has to know a model's normalisation.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from inference.preprocessing import CLASSES

DEFAULT_BASE_WEIGHTS = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/models/mobilenet_v2_imagenet/mobilenet_v2_1.0_224_no_top.weights.h5"
)
FEATURES_LAYER = "features"
LOGITS_LAYER = "logits"


def resolve_base_weights(option: str | None) -> str | None:
    """A local weights file when one is given or present, else Keras' own ImageNet download.

    ``"none"`` starts from random weights (for tests of the pipeline itself).
    """
    if option == "none":
        return None
    if option:
        if option != "imagenet" and not Path(option).exists():
            raise FileNotFoundError(f"base weights not found: {option}")
        return option
    return str(DEFAULT_BASE_WEIGHTS) if DEFAULT_BASE_WEIGHTS.exists() else "imagenet"


def mobilenet_v2(size: int, base_weights: str, dropout: float = 0.3) -> tuple[keras.Model, keras.Model]:
    """MobileNetV2 (alpha 1.0) with a global-average-pooling + dense head.

    The base is always called with ``training=False``: the shipped ImageNet weights have
    BatchNorm folded into the convolutions, so batch statistics would destroy them.
    Returns ``(model, base)``; ``model`` outputs logits.
    """
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=1.0, include_top=False, weights=base_weights
    )
    inputs = keras.Input((size, size, 3), name="pixels")
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    features = base(scaled, training=False)
    features = layers.Identity(name=FEATURES_LAYER)(features)
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    logits = layers.Dense(len(CLASSES), name=LOGITS_LAYER)(pooled)
    return keras.Model(inputs, logits, name="mobilenet_v2"), base


def set_trainable_from(base: keras.Model, first_block: int | None) -> None:
    """Freeze the base, then unfreeze from ``block_<first_block>`` upwards (None: keep frozen).

    BatchNormalization layers stay frozen whatever is unfrozen around them.
    """
    base.trainable = first_block is not None
    if first_block is None:
        return
    unfrozen = first_block == 0
    for layer in base.layers:
        if layer.name.startswith(f"block_{first_block}_"):
            unfrozen = True
        layer.trainable = unfrozen and not isinstance(layer, layers.BatchNormalization)


def lenet5(size: int = 32) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998) on RGB input, as in the published comparison."""
    inputs = keras.Input((size, size, 3), name="pixels")
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.Conv2D(6, 5, activation="tanh")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(16, 5, activation="tanh")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation="tanh")(x)
    x = layers.Dense(84, activation="tanh")(x)
    logits = layers.Dense(len(CLASSES), name=LOGITS_LAYER)(x)
    return keras.Model(inputs, logits, name="lenet5")


def alexnet(size: int = 128) -> keras.Model:
    """AlexNet (Krizhevsky et al. 2012): five convolutions, three dense layers.

    The original layer widths, on a smaller input and with 1024-wide dense layers so it
    trains on a CPU; batch normalisation stands in for local response normalisation.
    """
    inputs = keras.Input((size, size, 3), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(96, 11, strides=4, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(1024, activation="relu")(x)
    logits = layers.Dense(len(CLASSES), name=LOGITS_LAYER)(x)
    return keras.Model(inputs, logits, name="alexnet")


def serving_model(model: keras.Model) -> keras.Model:
    """The exported graph: logits and, for MobileNetV2, the last feature map for heatmaps."""
    outputs = {"logits": model.get_layer(LOGITS_LAYER).output}
    try:
        outputs["features"] = model.get_layer(FEATURES_LAYER).output
    except ValueError:
        pass
    return keras.Model(model.inputs, outputs, name=f"{model.name}_serving")
