"""Fit the photo gate (``inference.gate``) for a model: statistics on training, thresholds on validation.

    python -m training.gate build --source inference/artifacts/ham10000-mobilenetv2-v1 \\
        --model-version ham10000-mobilenetv2-v1-gate --cache-dir runs/cache --make-default

``build`` reuses a finished artifact's network files, fits the gate on the split the model was
trained with (``report/split.csv``) and writes a new artifact version beside it with a fresh
manifest; the source artifact is never changed. ``training.finalize`` calls :func:`fit_gate`
itself, so a newly trained model always ships its own gate.

The out-of-domain score uses the model's own pooled features (Mahalanobis distance to the
nearest training class mean, one shared covariance, fitted on the training split only) plus
its energy score; both are standardised on the training split and added. Its threshold is
the validation quantile that turns back ``ood_rate`` of validation lesions. The image-quality
thresholds are chosen on validation photos and on degraded copies of them (see DEGRADATIONS).
The test split is never used for a choice; ``benchmarks/gate.py`` measures on it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from inference import gate as gate_module
from inference import quality

# Strengths of the degradations used to choose and measure the quality thresholds. Blur is a
# Gaussian of standard deviation given as a share of the photo's height (224 px at the model's
# input: 0.01 is 2.2 px); exposure is in photographic stops, applied in linear light with the
# sensor clipping at white. SEVERE is the strength from which a photo counts as unusable: the
# mildest one at which the model's most likely class agrees with its reading of the undegraded
# photo on at most 60% of validation photos (and its balanced accuracy has fallen from 0.74 to
# 0.42-0.49). benchmarks/gate.py prints that agreement at every strength.
DEGRADATIONS: dict[str, tuple[float, ...]] = {
    "blur": (0.005, 0.01, 0.02, 0.03, 0.045),
    "dark": (-1.0, -2.0, -3.0, -4.0, -5.0),
    "overexposed": (1.0, 1.5, 2.0, 2.5, 3.0),
}
SEVERE: dict[str, float] = {"blur": 0.02, "dark": -3.0, "overexposed": 2.0}
SEVERE_WORD = {"blur": "blurred", "dark": "darkened", "overexposed": "overexposed"}
TOTAL_RATE = 0.0175  # validation photos the whole gate turns back (the out-of-domain threshold takes the rest)
QUALITY_RATE = 0.0015  # validation photos each quality threshold may turn back
SHRINKAGE = 0.1


def degrade(pixels: np.ndarray, kind: str, strength: float) -> np.ndarray:
    """A degraded copy of one (H, W, 3) uint8 image: ``blur``, ``dark`` or ``overexposed``."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    if kind == "blur":
        radius = strength * pixels.shape[0]
        return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)
    if kind in ("dark", "overexposed"):
        linear = (pixels.astype(np.float32) / 255.0) ** 2.2
        linear = np.clip(linear * (2.0**strength), 0.0, 1.0)
        return np.round(255.0 * linear ** (1 / 2.2)).astype(np.uint8)
    raise ValueError(f"unknown degradation {kind!r}")


def run_model(runner_predictor, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, 7) and pooled features (N, K) of the served LiteRT model for N images."""
    logits, pooled = [], []
    for image in pixels:
        raw, feature_map = runner_predictor.run(image)
        if feature_map is None:
            raise ValueError("this model exports no feature map; the gate needs its pooled features")
        logits.append(np.asarray(raw, dtype=np.float32))
        pooled.append(feature_map.mean(axis=(0, 1)).astype(np.float32))
    return np.stack(logits), np.stack(pooled)


def measure_all(pixels: np.ndarray) -> np.ndarray:
    """Quality measures (N, len(quality.NAMES)) for N images."""
    return np.array([[getattr(quality.measure(p), n) for n in quality.NAMES] for p in pixels], dtype=np.float64)


def describe_images(predictor, pixels: np.ndarray) -> dict[str, np.ndarray]:
    logits, pooled = run_model(predictor, pixels)
    return {"logits": logits, "features": pooled, "quality": measure_all(pixels)}


# --- Out-of-domain images for measuring (never for fitting) ----------------------------------
def synthetic_images(size: int = 224, seed: int = 0) -> dict[str, np.ndarray]:
    """Images that are plainly not a skin lesion, made here: flat colours, noise, text, patterns."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, colour in {
        "white": (255, 255, 255),
        "black": (0, 0, 0),
        "grey": (128, 128, 128),
        "skin-tone": (224, 172, 140),
        "red": (200, 30, 30),
        "blue": (40, 60, 200),
        "green": (40, 160, 60),
    }.items():
        out[f"flat-{name}"] = np.full((size, size, 3), colour, np.uint8)
    out["noise-uniform"] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    out["noise-gaussian"] = np.clip(rng.normal(128, 50, (size, size, 3)), 0, 255).astype(np.uint8)
    out["noise-grey"] = np.repeat(rng.integers(0, 256, (size, size, 1), dtype=np.uint8), 3, axis=2)
    out["noise-coarse"] = np.asarray(
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((size, size), Image.NEAREST)
    )
    for cells in (4, 8, 28):
        board = (np.indices((size, size)) // (size // cells)).sum(axis=0) % 2
        out[f"checkerboard-{cells}"] = np.repeat((board * 255).astype(np.uint8)[..., None], 3, axis=2)
    out["stripes"] = np.repeat(((np.arange(size) // 12) % 2 * 255).astype(np.uint8)[None, :, None], size, 0).repeat(
        3, 2
    )
    x = np.linspace(0, 1, size, dtype=np.float32)
    out["gradient"] = (
        np.stack([x[None, :].repeat(size, 0), x[:, None].repeat(size, 1), 1 - x[None, :].repeat(size, 0)], -1) * 255
    ).astype(np.uint8)
    for index, (background, ink) in enumerate([((255, 255, 255), (0, 0, 0)), ((250, 240, 200), (20, 20, 120))]):
        page = Image.new("RGB", (size, size), background)
        draw = ImageDraw.Draw(page)
        for line in range(14):
            draw.text((6, 4 + line * 16), "Patient consent form, page 1 of 2 " * 2, fill=ink)
        out[f"text-{index}"] = np.asarray(page)
    shapes = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(shapes)
    for _ in range(12):
        x0, y0 = rng.integers(0, size - 40, 2)
        w, h = rng.integers(20, 90, 2)
        draw.ellipse((int(x0), int(y0), int(x0 + w), int(y0 + h)), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    out["shapes"] = np.asarray(shapes)
    return out


def package_photos() -> dict[str, Image.Image]:
    """Natural photographs shipped inside scikit-image and scikit-learn (development only)."""
    photos: dict[str, Image.Image] = {}
    try:
        from skimage import data as skdata

        for name in (
            "astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page", "text",
            "horse", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel",
            "logo", "motorcycle_left", "grass", "gravel", "brick", "rough_wall", "cell", "clock",
        ):  # fmt: skip
            try:
                array = getattr(skdata, name)()
            except Exception:  # an image that is not bundled needs a download; skip it
                continue
            array = np.asarray(array)
            if array.dtype == bool:
                array = array.astype(np.uint8) * 255
            if array.dtype != np.uint8:
                array = (255 * (array - array.min()) / max(float(np.ptp(array)), 1e-9)).astype(np.uint8)
            if array.ndim == 2:
                array = np.repeat(array[..., None], 3, axis=2)
            photos[f"skimage-{name}"] = Image.fromarray(array[..., :3])
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        for filename, array in zip(bunch.filenames, bunch.images, strict=True):
            photos[f"sklearn-{Path(filename).stem}"] = Image.fromarray(array)
    except ImportError:
        pass
    return photos


def out_of_domain_pixels(size: int = 224) -> dict[str, np.ndarray]:
    """Every out-of-domain image as model pixels: package photos (and crops of them) plus synthetic ones."""
    from inference.preprocessing import model_pixels

    images: dict[str, np.ndarray] = {}
    for name, photo in package_photos().items():
        images[name] = model_pixels(photo, size)
        w, h = photo.size
        for index, (left, top) in enumerate([(0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2)]):
            crop = photo.crop((left, top, left + w // 2, top + h // 2))
            images[f"{name}-crop{index}"] = model_pixels(crop, size)
    images.update(synthetic_images(size))
    return images


# --- Describing images --------------------------------------------------------------------------
def describe(predictor, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """What the gate reads of N images: logits, pooled features, quality measures, skin share."""
    logits, pooled = run_model(predictor, pixels)
    return {
        "logits": logits,
        "features": pooled,
        "quality": measure_all(pixels),
        "skin_fraction": np.array([gate_module.skin_fraction(p) for p in pixels], dtype=np.float64),
        "colourfulness": np.array([gate_module.colourfulness(p) for p in pixels], dtype=np.float64),
    }


def describe_degraded(predictor, pixels: np.ndarray, kind: str, strength: float) -> dict[str, np.ndarray]:
    return describe(predictor, np.stack([degrade(p, kind, strength) for p in pixels]))


# --- Fitting -----------------------------------------------------------------------------------
def fit_statistics(features: np.ndarray, labels: np.ndarray, logits: np.ndarray, shrinkage: float) -> dict:
    """Class means and shared precision of the pooled features, and the score standardisation.

    Classes with fewer than two training images get no mean (a tiny development split may lack some).
    """
    features = gate_module.unit_length(features)
    labels = np.asarray(labels)
    present = [c for c in np.unique(labels) if (labels == c).sum() >= 2]
    if not present:
        raise ValueError("the gate needs at least two training images of some class")
    keep = np.isin(labels, present)
    features, labels, logits = features[keep], labels[keep], np.asarray(logits)[keep]
    means = np.stack([features[labels == c].mean(axis=0) for c in present])
    index = {c: i for i, c in enumerate(present)}
    centred = features - means[[index[c] for c in labels]]
    covariance = centred.T @ centred / len(features)
    # Shrinkage towards a scaled identity keeps the inverse well-conditioned (1280 dimensions).
    target = np.trace(covariance) / covariance.shape[0]
    covariance = (1 - shrinkage) * covariance + shrinkage * max(target, 1e-6) * np.eye(covariance.shape[0])
    precision = np.linalg.inv(covariance)
    stats = {"class_means": means.astype(np.float32), "precision": precision.astype(np.float32)}
    mahalanobis = gate_module.mahalanobis_min(features, stats["class_means"], stats["precision"])
    energy = gate_module.energy(logits)
    terms = np.stack([mahalanobis, energy], axis=1)
    center = np.median(terms, axis=0)
    scale = np.percentile(terms, 75, axis=0) - np.percentile(terms, 25, axis=0)
    stats["score_center"] = center.astype(np.float64)
    stats["score_scale"] = np.maximum(scale, 1e-6).astype(np.float64)
    return stats


def fit_gate(
    *,
    train: dict[str, np.ndarray],
    train_labels: np.ndarray,
    val: dict[str, np.ndarray],
    val_severe: dict[str, dict[str, np.ndarray]],
    total_rate: float = TOTAL_RATE,
    quality_rate: float = QUALITY_RATE,
    shrinkage: float = SHRINKAGE,
    members: int = 1,
) -> tuple[gate_module.Gate, dict]:
    """The fitted gate and its manifest section (thresholds, how they were chosen, validation figures).

    Statistics come from ``train`` only. Each quality threshold turns back at most
    ``quality_rate`` of the validation photos; the out-of-domain threshold is then set so that
    the gate as a whole turns back ``total_rate`` of them (the issue's ceiling is 2%; the margin
    is for the test split). ``val_severe[kind]`` (validation photos degraded at ``SEVERE[kind]``)
    is only reported here, as a check that the thresholds catch them.
    """
    # An ensemble's gate describes its first network's features (inference.gate.leading).
    channels = train["features"].shape[1] // members
    stats = fit_statistics(train["features"][:, :channels], train_labels, train["logits"], shrinkage)
    val_scores = gate_module.ood_score(val["features"], val["logits"], stats)
    column = {name: index for index, name in enumerate(quality.NAMES)}
    q = val["quality"]
    thresholds = {
        "luma_mean_min": float(np.quantile(q[:, column["luma_mean"]], quality_rate)),
        "clipped_fraction_max": float(max(np.quantile(q[:, column["clipped_fraction"]], 1 - quality_rate), 0.05)),
        "blur_max": float(np.quantile(q[:, column["blur"]], 1 - quality_rate)),
        "detail_min": float(np.quantile(q[:, column["detail"]], quality_rate)),
        "skin_fraction_min": gate_module.SKIN_FRACTION_MIN,
    }
    quality_fails = (
        (q[:, column["luma_mean"]] < thresholds["luma_mean_min"])
        | (q[:, column["clipped_fraction"]] > thresholds["clipped_fraction_max"])
        | (q[:, column["blur"]] > thresholds["blur_max"])
        | (q[:, column["detail"]] < thresholds["detail_min"])
    )
    budget = max(int(np.floor(total_rate * len(val_scores))) - int(quality_fails.sum()), 0)
    passing = np.sort(val_scores[~quality_fails])[::-1]
    # Turn back the ``budget`` highest-scoring photos the quality checks let through.
    thresholds["ood_score"] = float(passing[budget]) if budget < len(passing) else float(passing[-1])
    ood_rate = budget / len(val_scores)
    gate = gate_module.Gate(stats=stats, thresholds=thresholds)
    section = {
        "file": "gate.npz",
        "method": (
            "Out of domain: squared Mahalanobis distance of the pooled features"
            + (f" of the first of the ensemble's {members} networks" if members > 1 else "")
            + ", scaled to unit length, to "
            f"the nearest training-class mean (shared covariance with shrinkage {shrinkage}) plus the energy "
            "score -logsumexp(logits), each standardised (median, interquartile range) on the training split. "
            "Quality: mean luminance, share of clipped pixels, the blur measure of Crete et al. (2007) and the "
            "detail left in the model's input (inference/quality.py)."
        ),
        "thresholds": thresholds,
        "chosen_on": (
            f"validation split: each quality threshold turns back at most {quality_rate:.2%} of its photos, "
            f"the out-of-domain threshold a further {ood_rate:.2%}, {total_rate:.2%} in all"
        ),
        "severe_degradation": {
            "blur": f"Gaussian blur, standard deviation {SEVERE['blur']:.1%} of the image height",
            "dark": f"{-SEVERE['dark']:g} stops under-exposed",
            "overexposed": f"{SEVERE['overexposed']:g} stops over-exposed, clipped at white",
        },
        "validation": {
            "lesions_turned_back": turned_back_share(gate, val),
            **{f"severe_{kind}_turned_back": turned_back_share(gate, d) for kind, d in val_severe.items()},
        },
    }
    return gate, section


def midway_quality_thresholds(
    gate: gate_module.Gate,
    acceptable: list[dict[str, np.ndarray]],
    severe: dict[str, dict[str, np.ndarray]],
    *,
    quality_rate: float = QUALITY_RATE,
    catch: float = 0.97,
) -> gate_module.Gate:
    """A gate whose quality thresholds sit halfway between acceptable photos and unusable ones.

    ``acceptable``: described photos that must be read (the validation split as taken and under
    every mild shift); ``severe[kind]``: the validation photos degraded at ``SEVERE[kind]``. Each
    threshold starts at the ``quality_rate`` quantile of the acceptable photos (as ``fit_gate``)
    and moves halfway towards the value that still catches ``catch`` of the severe photos, when
    that value lies further out: a smooth red vascular lesion or a pale one is not called blurred
    or overexposed while a photo that is truly unreadable still is.
    """
    column = {name: index for index, name in enumerate(quality.NAMES)}
    ok = np.concatenate([d["quality"] for d in acceptable])

    def measure(name, described=None):
        return (ok if described is None else described["quality"])[:, column[name]]

    def halfway(clean: float, bad: float, lower_is_worse: bool) -> float:
        further = bad < clean if lower_is_worse else bad > clean
        return float((clean + bad) / 2) if further else float(clean)

    t = dict(gate.thresholds)
    t["luma_mean_min"] = halfway(
        np.quantile(measure("luma_mean"), quality_rate), np.quantile(measure("luma_mean", severe["dark"]), catch), True
    )
    t["clipped_fraction_max"] = max(
        halfway(
            np.quantile(measure("clipped_fraction"), 1 - quality_rate),
            np.quantile(measure("clipped_fraction", severe["overexposed"]), 1 - catch),
            False,
        ),
        0.05,
    )
    t["blur_max"] = halfway(
        np.quantile(measure("blur"), 1 - quality_rate), np.quantile(measure("blur", severe["blur"]), 1 - catch), False
    )
    t["detail_min"] = halfway(
        np.quantile(measure("detail"), quality_rate), np.quantile(measure("detail", severe["blur"]), catch), True
    )
    # The out-of-domain thresholds per class mean are kept; quality ones per class (from the single
    # ones this replaces) are fitted afterwards, by class_quality_thresholds.
    if gate.class_thresholds is not None:
        t[gate_module.BY_CLASS] = gate.class_thresholds.tolist()
    t[gate_module.ENERGY_WEIGHT] = gate.energy_weight
    return gate_module.Gate(stats=gate.stats, thresholds=t)


def fit_class_thresholds(
    gate: gate_module.Gate,
    reference: list[dict[str, np.ndarray]],
    *,
    rate: float,
    energy_weight: float,
    pooled_tail: bool = True,
) -> tuple[gate_module.Gate, dict]:
    """A gate whose out-of-domain threshold is set per class mean, from the scores of the
    ``reference`` photos nearest to that class mean.

    ``reference``: described lesion photos no statistic was fitted on (the validation split as
    taken and under each mild shift of training.shifts). A photo is judged against the photos
    that resemble the same kind of lesion, so the kinds the network reads less confidently or
    that vary more (basal cell carcinoma, actinic keratosis) are not turned back more often than
    naevi. The quality thresholds are kept. Returns the new gate and what the manifest records.

    Each threshold is the class' own ``1 - rate`` quantile (v3) or, with ``pooled_tail`` (from
    v4), the higher of that and the same quantile read from every class' scores at once, each
    photo's score measured from its class' median in units of its class' interquartile range.
    A kind with a dozen validation lesions (vascular lesions, dermatofibromas: their shifted
    copies add photos, not lesions) has no 99.5% quantile of its own worth the name; the shared
    tail gives it one from a median and a spread, which a dozen lesions estimate far better than
    an extreme quantile, and the higher of the two never holds a kind to a tighter threshold than
    its own photos show. The shared tail is dominated by the commonest kinds (naevi): it assumes
    that the rare kinds' scores have the same shape once centred and scaled, which the
    cross-fitted comparison (training.operating_point compare-gates) is there to check.
    """
    stats = gate.stats
    scores = np.concatenate(
        [gate_module.ood_score(d["features"], d["logits"], stats, energy_weight) for d in reference]
    )
    nearest = np.concatenate([gate_module.nearest_class(d["features"], stats) for d in reference])
    classes = range(len(stats["class_means"]))
    # each class mean's median and interquartile range (NaN with fewer than two photos or no spread)
    centre, spread = np.full(len(classes), np.nan), np.full(len(classes), np.nan)
    for c in classes:
        if (nearest == c).sum() >= 2:
            centre[c] = np.median(scores[nearest == c])
            spread[c] = np.subtract(*np.percentile(scores[nearest == c], [75, 25])) or np.nan
    known = ~np.isnan(spread[nearest])
    shared = None
    if pooled_tail and known.any():
        units = (scores[known] - centre[nearest[known]]) / spread[nearest[known]]
        shared = float(np.quantile(units, 1 - rate))
    by_class = []
    for index in classes:
        own = scores[nearest == index]
        # a class mean no reference photo is nearest to keeps the single threshold
        threshold = float(np.quantile(own, 1 - rate)) if len(own) else gate.thresholds["ood_score"]
        if shared is not None and not np.isnan(spread[index]):
            threshold = max(threshold, float(centre[index] + shared * spread[index]))
        by_class.append(threshold)
    thresholds = {
        **gate.all_thresholds(),  # per-class quality thresholds, if any, are kept
        gate_module.ENERGY_WEIGHT: float(energy_weight),
        gate_module.BY_CLASS: by_class,
    }
    counts = np.bincount(nearest, minlength=len(by_class)).tolist()
    return gate_module.Gate(stats=stats, thresholds=thresholds), {"reference_photos_by_class_mean": counts}


def class_quality_thresholds(
    gate: gate_module.Gate, reference: list[dict[str, np.ndarray]]
) -> tuple[gate_module.Gate, dict]:
    """A gate whose blur and detail thresholds follow the kind of lesion a photo resembles.

    Some kinds are smoother by nature: a vascular lesion is a red blob with little texture, so
    the detail left in a sharp photo of one is that of a blurred naevus. The detail floor of
    each class mean is the single one scaled by the ratio of the median detail of the
    ``reference`` photos nearest that mean to the median of all of them (never above the single
    floor), and the blur ceiling is raised by the amount its median blur measure lies above the
    overall median (never lowered). Exposure thresholds stay one for all: a dark photo is dark
    whatever it shows.
    """
    column = {name: index for index, name in enumerate(quality.NAMES)}
    q = np.concatenate([d["quality"] for d in reference])
    nearest = np.concatenate([gate_module.nearest_class(d["features"], gate.stats) for d in reference])
    detail, blur = q[:, column["detail"]], q[:, column["blur"]]
    detail_min, blur_max = gate.thresholds.get("detail_min", 0.0), gate.thresholds["blur_max"]
    detail_by_class, blur_by_class = [], []
    for index in range(len(gate.stats["class_means"])):
        own = nearest == index
        if own.sum() < 2:
            detail_by_class.append(detail_min)
            blur_by_class.append(blur_max)
            continue
        detail_by_class.append(detail_min * min(1.0, float(np.median(detail[own]) / np.median(detail))))
        blur_by_class.append(blur_max + max(0.0, float(np.median(blur[own]) - np.median(blur))))
    thresholds = {
        **gate.all_thresholds(),
        gate_module.DETAIL_BY_CLASS: detail_by_class,
        gate_module.BLUR_BY_CLASS: blur_by_class,
    }
    return gate_module.Gate(stats=gate.stats, thresholds=thresholds), {
        "quality_by_class": "detail floor scaled and blur ceiling raised by each class mean's median (reference photos)"
    }


def turned_back_by_class(gate: gate_module.Gate, described: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Share of each class' photos (by true label) the gate turns back, and of all of them."""
    from inference.preprocessing import CLASSES

    back = np.array(decisions(gate, described)) != gate_module.OK
    labels = np.asarray(labels)
    table = {
        name: {"photos": int((labels == i).sum()), "turned_back": round(float(back[labels == i].mean()), 4)}
        for i, name in enumerate(CLASSES)
        if (labels == i).any()
    }
    table["all"] = {"photos": int(len(labels)), "turned_back": round(float(back.mean()), 4)}
    return table


def decisions(gate: gate_module.Gate, described: dict[str, np.ndarray]) -> list[str]:
    """The gate's reason for each described image."""
    reasons = []
    for index in range(len(described["logits"])):
        decision = gate.decide_arrays(
            quality_values=dict(zip(quality.NAMES, described["quality"][index], strict=True)),
            features=described["features"][index],
            logits=described["logits"][index],
            skin_fraction=float(described["skin_fraction"][index]),
            colourfulness=float(described["colourfulness"][index]) if "colourfulness" in described else None,
        )
        reasons.append(decision.reason)
    return reasons


def turned_back_share(gate: gate_module.Gate, described: dict[str, np.ndarray]) -> float:
    reasons = decisions(gate, described)
    return round(sum(r != gate_module.OK for r in reasons) / max(len(reasons), 1), 4)


def test_figures(gate: gate_module.Gate, test: dict, test_severe: dict, ood: dict) -> dict:
    """The figures the model page and report show, measured on data no choice was made on."""
    return {
        "test_images": int(len(test["logits"])),
        "test_lesions_turned_back": turned_back_share(gate, test),
        "out_of_domain_images": int(len(ood["logits"])),
        "out_of_domain_turned_back": turned_back_share(gate, ood),
        **{f"severe_{kind}_turned_back": turned_back_share(gate, d) for kind, d in test_severe.items()},
    }


# --- Fitting for a model: used by training.finalize and by ``build`` ----------------------------
def split_pixels(data_dir: Path, split_csv: Path, size: int, cache_dir: Path | None):
    """Model pixels and labels per split, in the order training used (so its pixel cache is reused)."""
    from training import data as data_module

    records = data_module.read_metadata(data_dir)
    assignment = data_module.read_split(split_csv)
    out = {}
    for name in data_module.SPLITS:
        items = [r for r in records if assignment.get(r.image_id) == name]
        ids = [r.image_id for r in items]
        out[name] = (data_module.load_pixels(data_dir, ids, size, cache_dir), np.array([r.label for r in items]))
    return out


def describe_sets(predictor, splits: dict, *, log=print, describe_cache: Path | None = None) -> dict:
    """What the model makes of every set the gate is fitted and measured on.

    ``train`` (model outputs only), ``val`` and ``test`` (with pixel measures), ``val_severe`` and
    ``test_severe`` (each severe degradation) and ``ood`` (out-of-domain images). ``describe_cache``:
    a folder where the model outputs are kept (for refitting the same model without running it
    again); the caller makes sure it belongs to this model.
    """
    (train_pixels, _), (val_pixels, _), (test_pixels, _) = splits["train"], splits["val"], splits["test"]
    log(f"gate: describing {len(train_pixels)} training, {len(val_pixels)} validation, {len(test_pixels)} test photos")

    def cached(name: str, pixels_of, measures: bool = True):
        """What the model made of a set (kept in ``describe_cache``) plus its pixel measures (recomputed)."""
        file = Path(describe_cache) / f"{name}.npz" if describe_cache else None
        pixels = pixels_of()
        if file is not None and file.exists():
            with np.load(file) as arrays:
                logits, pooled = arrays["logits"], arrays["features"]
        else:
            logits, pooled = run_model(predictor, pixels)
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                np.savez(file, logits=logits, features=pooled)
        log(f"gate: described {name}")
        if not measures:
            return {"logits": logits, "features": pooled}
        return {
            "logits": logits,
            "features": pooled,
            "quality": measure_all(pixels),
            "skin_fraction": np.array([gate_module.skin_fraction(p) for p in pixels], dtype=np.float64),
            "colourfulness": np.array([gate_module.colourfulness(p) for p in pixels], dtype=np.float64),
        }

    def degraded(pixels, kind):
        return lambda: np.stack([degrade(p, kind, SEVERE[kind]) for p in pixels])

    size = predictor.artifact.input_size
    return {
        # The training split gives the statistics only: its model outputs, no pixel measures.
        "train": cached("train", lambda: train_pixels, measures=False),
        "val": cached("val", lambda: val_pixels),
        "val_severe": {kind: cached(f"val-{kind}", degraded(val_pixels, kind)) for kind in SEVERE},
        "test": cached("test", lambda: test_pixels),
        "test_severe": {kind: cached(f"test-{kind}", degraded(test_pixels, kind)) for kind in SEVERE},
        "ood": cached("ood", lambda: np.stack(list(out_of_domain_pixels(size).values()))),
    }


def fit_for_model(
    predictor, splits: dict, *, log=print, describe_cache: Path | None = None
) -> tuple[gate_module.Gate, dict]:
    """Fit the gate for the model ``predictor`` serves; the section includes the test figures."""
    members = len(predictor.artifact.manifest.get("training", {}).get("ensemble_of") or []) or 1
    sets = describe_sets(predictor, splits, log=log, describe_cache=describe_cache)
    gate, section = fit_gate(
        train=sets["train"],
        train_labels=splits["train"][1],
        val=sets["val"],
        val_severe=sets["val_severe"],
        members=members,
    )
    section["test"] = test_figures(gate, sets["test"], sets["test_severe"], sets["ood"])
    log(f"gate: {json.dumps(section['test'])}")
    return gate, section


def write_into(folder: Path, gate: gate_module.Gate, section: dict) -> dict:
    """Write ``gate.npz`` into an artifact folder being built; returns the manifest section."""
    gate.save(Path(folder) / section["file"])
    return section


def fit_into(folder: Path, manifest: dict, *, data_dir: Path, split_csv: Path, cache_dir: Path | None) -> dict:
    """For ``export_artifact(gate_fit=...)``: fit the gate for the network in ``folder`` and write it there.

    Appends the gate's section to ``folder/report/report.md`` when there is one.
    """
    from inference.artifact import Artifact
    from inference.predictor import Predictor

    predictor = Predictor(Artifact(Path(folder), manifest))
    splits = split_pixels(data_dir, split_csv, predictor.artifact.input_size, cache_dir)
    gate, section = fit_for_model(predictor, splits)
    report = Path(folder) / "report" / "report.md"
    if report.exists():
        report.write_text(report.read_text().rstrip() + "\n\n" + report_markdown(section) + "\n")
    return write_into(folder, gate, section)


def report_markdown(section: dict) -> str:
    t = section["test"]
    v = section["validation"]
    rows = [
        (
            "test-split lesion photos turned back (target at most 2%)",
            t["test_lesions_turned_back"],
            v["lesions_turned_back"],
        ),
        ("out-of-domain images turned back (target at least 95%)", t["out_of_domain_turned_back"], None),
        *(
            (
                f"severely {SEVERE_WORD[kind]} photos turned back (target at least 90%)",
                t[f"severe_{kind}_turned_back"],
                v[f"severe_{kind}_turned_back"],
            )
            for kind in SEVERE
        ),
    ]
    lines = [
        "## Photo gate",
        "",
        "Before any result is shown, every photo passes a gate that turns back photos the model must not "
        "read: out of its domain (not skin, not a lesion like those it was trained on), out of focus, too "
        "dark or overexposed. " + section["method"],
        "",
        f"Thresholds chosen on the {section['chosen_on']}. Severe degradation: "
        + "; ".join(f"{k}: {v}" for k, v in section["severe_degradation"].items())
        + f". Out-of-domain images: {t['out_of_domain_images']} in all, natural photographs shipped with "
        "scikit-image and scikit-learn (whole and quartered) and synthetic images (flat colours, noise, text, "
        "patterns).",
        "",
        "| turned back | test split | validation split |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {test:.1%} | {'' if val is None else f'{val:.1%}'} |" for label, test, val in rows),
        "",
    ]
    return "\n".join(lines)


def build(
    *,
    source: Path,
    model_version: str,
    data_dir: Path,
    cache_dir: Path | None,
    artifacts_dir: Path,
    make_default: bool = False,
    describe_cache: Path | None = None,
    dry_run: bool = False,
) -> Path | None:
    """A new artifact version: ``source``'s network files, a gate fitted for them, a fresh manifest."""
    import datetime as dt

    from inference.artifact import FORMAT_VERSION, Artifact, sha256_file
    from inference.predictor import Predictor

    source = Path(source)
    manifest = verified_manifest(source)
    network = dict(manifest)
    network.pop("gate", None)
    predictor = Predictor(Artifact(source, network))
    splits = split_pixels(data_dir, source / "report" / "split.csv", predictor.artifact.input_size, cache_dir)
    gate, section = fit_for_model(predictor, splits, describe_cache=describe_cache)
    if dry_run:
        print(json.dumps(section, indent=2))
        return None

    destination = Path(artifacts_dir) / model_version
    if destination.exists():
        raise SystemExit(f"{destination} exists; an artifact version is never overwritten")
    partial = destination.with_name(destination.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in manifest["files"]:
        if name != "gate.npz":
            shutil.copy2(source / name, partial / name)
    if (source / "report").is_dir():
        shutil.copytree(source / "report", partial / "report")
        report = partial / "report" / "report.md"
        if report.exists():
            report.write_text(report.read_text().rstrip() + "\n\n" + report_markdown(section) + "\n")
    write_into(partial, gate, section)
    files = {p.name: sha256_file(p) for p in sorted(partial.iterdir()) if p.is_file()}
    new = {
        **network,
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "derived_from": {
            "model_version": manifest["model_version"],
            "note": "the same network files; a photo gate fitted for them by training.gate build",
        },
        "gate": section,
        "files": files,
    }
    return publish(partial, destination, new, make_default=make_default)


def verified_manifest(source: Path) -> dict:
    """A finished artifact's manifest, after checking every file against its recorded hash."""
    from inference.artifact import MANIFEST, sha256_file

    manifest = json.loads((Path(source) / MANIFEST).read_text())
    for name, expected in manifest["files"].items():
        if sha256_file(Path(source) / name) != expected:
            raise SystemExit(f"{Path(source) / name} does not match its recorded hash; refusing to build on it")
    return manifest


def publish(partial: Path, destination: Path, manifest: dict, *, make_default: bool) -> Path:
    """Write the manifest into the folder being built, move it into place (one rename), and
    serve it from now on when asked."""
    from inference.artifact import DEFAULT_FILE, MANIFEST

    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(destination)
    if make_default and destination.parent.resolve() == DEFAULT_FILE.parent.resolve():
        part = DEFAULT_FILE.with_suffix(".part")
        part.write_text(destination.name + "\n")
        part.replace(DEFAULT_FILE)
    return destination


def main(argv: list[str] | None = None) -> Path:
    from inference.artifact import ARTIFACTS_DIR
    from training.data import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="a new artifact version: an existing model's network plus a fitted gate")
    b.add_argument("--source", type=Path, required=True, help="the artifact whose network files are reused")
    b.add_argument("--model-version", required=True, help="the new version's name")
    b.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    b.add_argument("--cache-dir", type=Path, help="model-pixel cache shared with training.train")
    b.add_argument("--artifacts-dir", type=Path, default=ARTIFACTS_DIR)
    b.add_argument("--make-default", action="store_true")
    b.add_argument("--describe-cache", type=Path, help="keep what the model made of each image set here, for refits")
    b.add_argument("--dry-run", action="store_true", help="fit and print the figures; write no artifact")
    args = parser.parse_args(argv)
    destination = build(
        source=args.source,
        model_version=args.model_version,
        data_dir=args.data,
        cache_dir=args.cache_dir,
        artifacts_dir=args.artifacts_dir,
        make_default=args.make_default,
        describe_cache=args.describe_cache,
        dry_run=args.dry_run,
    )
    if destination is None:
        return None
    print(
        json.dumps(
            {"artifact": str(destination), **json.loads((destination / "manifest.json").read_text())["gate"]["test"]},
            indent=2,
        )
    )
    return destination


if __name__ == "__main__":
    main()
