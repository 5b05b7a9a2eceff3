"""The photo gate: decide whether the model may read a photo at all, before any result is shown.

No Django and no TensorFlow. The worker and ``python -m inference.batch`` call
:meth:`Gate.decide` on every photo with the model pixels and the logits and pooled features
the served model has just computed, so the gate costs a few vector operations, not a second
network. It answers ``ok`` or one reason, each with a plain message for the clinic:

- ``too_dark`` / ``overexposed`` / ``blurred``: image-quality measures on the model's input
  (:mod:`inference.quality`) below or above thresholds chosen on HAM10000 validation photos and
  degraded copies of them.
- ``not_skin`` / ``not_a_lesion``: out of the model's domain. The score adds two standardised
  terms: the Mahalanobis distance of the pooled features (scaled to unit length) to the nearest training-class mean
  (one shared covariance, fitted on the training split only) and the energy score
  ``-logsumexp(logits)`` (from v3 the energy's weight is 0: it marked the uncertain readings
  of basal cell carcinomas as unusual). Each photo is judged against the photos nearest to
  the same class mean: v3 keeps one threshold per class mean, chosen on validation photos as
  taken and under mild shifts, so that no kind of lesion is turned back more than the others.
  Above its threshold the photo is turned back: as ``not_skin`` when few of its pixels have
  skin colour, else as ``not_a_lesion``.

A photo turned back for its quality or as ``not_a_lesion`` still shows skin: when its
probabilities reach a referral threshold the case is referred all the same
(:attr:`Decision.turned_back_skin`, inference/risk.py). A ``not_skin`` photo never refers.

The order matters for the reason the clinic reads. A photo that is out of domain, has few
skin-coloured pixels and is clearly coloured (not grey, black or white) is ``not_skin`` before
any quality measure is looked at: a flat blue card has no detail and a saturated blue has a low
luminance, but "hold the phone steady" or "move to better light" would send the nurse back to
photograph the same card. Dark, washed-out and grey photos carry too little colour to tell, so
they keep their quality reason. Whether a photo is turned back at all does not depend on the
order, only which reason it is given.

The statistics and thresholds live in the model artifact (``gate.npz`` and the manifest's
``gate`` section), fitted by ``training.gate`` / ``training.finalize`` for each model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference import quality

OK = "ok"
NOT_SKIN = "not_skin"
NOT_A_LESION = "not_a_lesion"
BLURRED = "blurred"
TOO_DARK = "too_dark"
OVEREXPOSED = "overexposed"

MESSAGES: dict[str, str] = {
    NOT_SKIN: (
        "This photo does not look like skin. Photograph the lesion itself, close up so that it fills "
        "most of the frame, and take it again."
    ),
    NOT_A_LESION: (
        "This photo does not look like the skin lesions the model was trained on. Centre the lesion, "
        "take it close up (through a dermatoscope if you have one), and take it again."
    ),
    BLURRED: "This photo looks out of focus. Hold the phone steady, tap the lesion to focus, and take it again.",
    TOO_DARK: "This photo is too dark. Move to better light or turn on the phone's light, and take it again.",
    OVEREXPOSED: (
        "This photo is too bright: parts of it are washed out. Avoid direct sunlight and flash glare, "
        "and take it again."
    ),
}
REASONS: tuple[str, ...] = tuple(MESSAGES)

# Share of skin-coloured pixels (YCbCr rule below) under which an out-of-domain photo is
# called "not skin" rather than "not a lesion". It names the reason only; whether a photo is
# turned back is decided by the out-of-domain score.
SKIN_FRACTION_MIN = 0.3

# Mean distance of the pixels' chroma (Cb, Cr) from grey, in 8-bit levels, from which a photo
# is "clearly coloured": skin photographed in fair light sits around 30 to 40, a saturated blue
# card near 80, a photo three stops too dark under 5 and a washed-out one near 0.
COLOURFUL_MIN = 20.0

GATE_ARRAYS = ("class_means", "precision", "score_center", "score_scale")
BY_CLASS = "ood_score_by_class"  # thresholds key: one out-of-domain threshold per class mean
ENERGY_WEIGHT = "energy_weight"  # thresholds key: the energy term's weight in the score (1 when absent)
# thresholds keys (from v4): the blur measure's ceiling and the detail floor per class mean, for
# kinds of lesion that are smoother by nature (vascular lesions); without them, one for all
BLUR_BY_CLASS = "blur_max_by_class"
DETAIL_BY_CLASS = "detail_min_by_class"
PER_CLASS = (BY_CLASS, BLUR_BY_CLASS, DETAIL_BY_CLASS)


class GateError(ValueError):
    """The gate's statistics are missing or inconsistent."""


def unit_length(features: np.ndarray) -> np.ndarray:
    """Pooled features scaled to unit length.

    A photo's overall brightness and contrast scale all activations together; the direction,
    not the length, says what the photo shows. On the HAM10000 validation split this turned
    back 97.7% of the out-of-domain images at the false-alarm rate where the raw features
    turned back 91.5%.
    """
    x = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def mahalanobis_min(features: np.ndarray, class_means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance to the nearest class mean, for (D,) or (N, D) features."""
    x = np.atleast_2d(np.asarray(features, dtype=np.float64))
    means = np.asarray(class_means, dtype=np.float64)
    p = np.asarray(precision, dtype=np.float64)
    px = x @ p
    cross = px @ means.T
    mu_p_mu = np.einsum("cd,de,ce->c", means, p, means)
    distances = (px * x).sum(axis=1)[:, None] - 2 * cross + mu_p_mu[None, :]
    result = distances.min(axis=1)
    return result if np.ndim(features) > 1 else result[:1]


def energy(logits: np.ndarray) -> np.ndarray:
    """The energy score ``-logsumexp(logits)`` (Liu et al. 2020): higher is further from training data."""
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    peak = z.max(axis=1, keepdims=True)
    return -(peak[:, 0] + np.log(np.exp(z - peak).sum(axis=1)))


def leading(features: np.ndarray, dims: int) -> np.ndarray:
    """The first ``dims`` pooled features, those the gate's statistics describe.

    A single network's gate describes all of its features; an ensemble's (``training.ensemble``)
    describes its first network's, which lead its concatenated features, so the gate costs the
    same however many networks vote.
    """
    x = np.asarray(features)
    if x.shape[-1] < dims:
        raise GateError(f"the model gives {x.shape[-1]} pooled features; the gate's statistics need {dims}")
    return x[..., :dims]


def ood_score(
    features: np.ndarray, logits: np.ndarray, stats: dict[str, np.ndarray], energy_weight: float = 1.0
) -> np.ndarray:
    """Standardised Mahalanobis distance plus standardised energy (times ``energy_weight``):
    larger means less like a training lesion."""
    features = leading(features, np.shape(stats["class_means"])[1])
    distance = mahalanobis_min(unit_length(features), stats["class_means"], stats["precision"])
    terms = (np.stack([distance, energy(logits)], axis=1) - stats["score_center"]) / stats["score_scale"]
    return terms[:, 0] + energy_weight * terms[:, 1]


def nearest_class(features: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """Index of the nearest class mean (Mahalanobis) for each of (N, D) features."""
    x = unit_length(leading(np.atleast_2d(features), np.shape(stats["class_means"])[1]))
    means = np.asarray(stats["class_means"], dtype=np.float64)
    p = np.asarray(stats["precision"], dtype=np.float64)
    return np.argmin(-2 * (x @ p) @ means.T + np.einsum("cd,de,ce->c", means, p, means)[None, :], axis=1)


def _chroma(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Cb and Cr planes of 8-bit RGB pixels (ITU-R BT.601, full range)."""
    rgb = np.asarray(pixels, dtype=np.float32)[..., :3]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return cb, cr


def skin_fraction(pixels: np.ndarray) -> float:
    """Share of pixels whose chroma falls in the usual skin range (Cb 77-127, Cr 133-173; Chai and Ngan 1999)."""
    cb, cr = _chroma(pixels)
    return float(((cb >= 77) & (cb <= 127) & (cr >= 133) & (cr <= 173)).mean())


def colourfulness(pixels: np.ndarray) -> float:
    """Mean distance of the pixels' chroma from grey, in 8-bit levels (0 for grey, black or white)."""
    cb, cr = _chroma(pixels)
    return float(np.hypot(cb - 128, cr - 128).mean())


@dataclass(frozen=True)
class Decision:
    reason: str  # "ok" or one of REASONS
    score: float  # the out-of-domain score (higher: less like a training lesion)
    measures: dict[str, float] = field(default_factory=dict)
    nearest: int = -1  # the index of the class mean nearest to the photo's features

    @property
    def turned_back_skin(self) -> bool:
        """Turned back, but a photo of skin: its probabilities may still send the case to a specialist."""
        return self.reason not in (OK, NOT_SKIN)

    @property
    def ok(self) -> bool:
        return self.reason == OK

    @property
    def message(self) -> str:
        return MESSAGES.get(self.reason, "")


class Gate:
    def __init__(self, *, stats: dict[str, np.ndarray], thresholds: dict[str, float]):
        missing = [name for name in GATE_ARRAYS if name not in stats]
        if missing:
            raise GateError(f"gate statistics lack {', '.join(missing)}")
        needed = ("ood_score", "luma_mean_min", "clipped_fraction_max", "blur_max")
        absent = [name for name in needed if name not in thresholds]
        if absent:
            raise GateError(f"gate thresholds lack {', '.join(absent)}")
        self.stats = {name: np.asarray(stats[name]) for name in GATE_ARRAYS}
        by_class = thresholds.get(BY_CLASS)
        self.thresholds = {name: float(value) for name, value in thresholds.items() if name not in PER_CLASS}
        means = self.stats["class_means"].astype(np.float64)
        # One out-of-domain threshold per class mean, each judged against the photos nearest to that
        # class; without them (artifacts before v3) one threshold for all.
        self.class_thresholds = None
        self.energy_weight = self.thresholds.pop(ENERGY_WEIGHT, 1.0)
        if by_class is not None:
            self.class_thresholds = np.asarray(by_class, dtype=np.float64)
            if self.class_thresholds.shape != (means.shape[0],):
                raise GateError(f"{BY_CLASS} has {self.class_thresholds.size} values for {means.shape[0]} class means")
        # The quality thresholds a photo is held to, per class mean (one value each without them).
        self.class_quality = {}
        for key in (BLUR_BY_CLASS, DETAIL_BY_CLASS):
            if thresholds.get(key) is not None:
                values = np.asarray(thresholds[key], dtype=np.float64)
                if values.shape != (means.shape[0],):
                    raise GateError(f"{key} has {values.size} values for {means.shape[0]} class means")
                self.class_quality[key] = values
        precision = self.stats["precision"].astype(np.float64)
        if precision.shape != (means.shape[1], means.shape[1]):
            raise GateError(f"gate precision {precision.shape} does not fit class means {means.shape}")
        # Precomputed so one photo costs one (D x D) product: d_c = x'Px - 2 x'P mu_c + mu_c'P mu_c.
        self._precision = precision.astype(np.float32)
        self._p_means = (precision @ means.T).astype(np.float32)
        self._mu_p_mu = np.einsum("dc,dc->c", means.T, precision @ means.T)

    @classmethod
    def load(cls, file: str | Path, thresholds: dict[str, float]) -> Gate:
        with np.load(file) as arrays:
            return cls(stats={name: arrays[name] for name in arrays.files}, thresholds=thresholds)

    def save(self, file: str | Path) -> None:
        np.savez(file, **self.stats)

    def score(self, features: np.ndarray, logits: np.ndarray) -> float:
        return self.scored(features, logits)[0]

    def scored(self, features: np.ndarray, logits: np.ndarray) -> tuple[float, int]:
        """The out-of-domain score and the index of the nearest class mean."""
        x = unit_length(leading(np.asarray(features).reshape(-1), self._precision.shape[0])).astype(np.float32)
        # einsum, not BLAS: a multi-threaded BLAS call on a busy worker can wait on its threads
        # for far longer than this single-threaded 1280 x 1280 product takes.
        px = np.einsum("ij,j->i", self._precision, x)
        distance = float(np.dot(x, px)) - 2 * np.einsum("i,ic->c", x, self._p_means).astype(np.float64) + self._mu_p_mu
        nearest = int(np.argmin(distance))
        terms = (np.array([distance[nearest], energy(logits)[0]]) - self.stats["score_center"]) / self.stats[
            "score_scale"
        ]
        return float(terms[0] + self.energy_weight * terms[1]), nearest

    def ood_threshold(self, nearest: int) -> float:
        """The out-of-domain threshold for a photo whose nearest class mean is ``nearest``."""
        if self.class_thresholds is None:
            return self.thresholds["ood_score"]
        return float(self.class_thresholds[nearest])

    def all_thresholds(self) -> dict[str, float | list[float]]:
        """Every threshold, as the manifest's gate section records them (per-class ones as lists)."""
        t: dict[str, float | list[float]] = dict(self.thresholds)
        t[ENERGY_WEIGHT] = self.energy_weight
        if self.class_thresholds is not None:
            t[BY_CLASS] = self.class_thresholds.tolist()
        for key, values in self.class_quality.items():
            t[key] = values.tolist()
        return t

    def blur_max(self, nearest: int) -> float:
        """The blur measure's ceiling for a photo whose nearest class mean is ``nearest``."""
        values = self.class_quality.get(BLUR_BY_CLASS)
        return self.thresholds["blur_max"] if values is None else float(values[nearest])

    def detail_min(self, nearest: int) -> float:
        """The detail floor for a photo whose nearest class mean is ``nearest``."""
        values = self.class_quality.get(DETAIL_BY_CLASS)
        return self.thresholds.get("detail_min", 0.0) if values is None else float(values[nearest])

    def decide(self, *, pixels: np.ndarray, features: np.ndarray, logits: np.ndarray) -> Decision:
        """The decision for one photo: its model pixels, pooled features and raw logits."""
        measures = quality.measure(pixels).as_dict()
        return self.decide_arrays(
            quality_values=measures,
            features=features,
            logits=logits,
            skin_fraction=lambda: skin_fraction(pixels),
            colourfulness=lambda: colourfulness(pixels),
        )

    def decide_arrays(
        self,
        *,
        quality_values: dict[str, float],
        features: np.ndarray,
        logits: np.ndarray,
        skin_fraction: float | Callable[[], float],
        colourfulness: float | Callable[[], float] | None = None,
    ) -> Decision:
        """``skin_fraction`` and ``colourfulness`` may be functions: they only name the reason of a
        photo that is out of domain, so they are computed only then. Without ``colourfulness`` no
        photo is called clearly coloured, and the quality reasons come first."""
        t = self.thresholds
        score, nearest = self.scored(features, logits)
        measures = {k: float(v) for k, v in quality_values.items()}
        out_of_domain = score > self.ood_threshold(nearest)
        not_skin = False
        if out_of_domain:
            skin = float(skin_fraction() if callable(skin_fraction) else skin_fraction)
            measures["skin_fraction"] = skin
            not_skin = skin < t.get("skin_fraction_min", SKIN_FRACTION_MIN)
            if not_skin and colourfulness is not None:
                measures["colourfulness"] = float(colourfulness() if callable(colourfulness) else colourfulness)
        if not_skin and measures.get("colourfulness", 0.0) >= COLOURFUL_MIN:
            reason = NOT_SKIN  # clearly something else: its exposure and focus are beside the point
        elif quality_values["luma_mean"] < t["luma_mean_min"]:
            reason = TOO_DARK
        elif quality_values["clipped_fraction"] > t["clipped_fraction_max"]:
            reason = OVEREXPOSED
        elif quality_values["blur"] > self.blur_max(nearest) or quality_values["detail"] < self.detail_min(nearest):
            reason = BLURRED
        elif out_of_domain:
            reason = NOT_SKIN if not_skin else NOT_A_LESION
        else:
            reason = OK
        return Decision(reason=reason, score=score, measures=measures, nearest=nearest)
