"""Referral thresholds placed on the lower end of an interval, not on a point estimate.

A threshold placed where validation shows 96% sensitivity refers fewer cancers on new
photos: the validation estimate is itself uncertain (a few hundred malignant photos, fewer
lesions), and new photos are taken differently. :func:`fit_bounded_thresholds` therefore
chooses the thresholds whose *lower* 95% bound of malignant sensitivity, and of melanoma
sensitivity, reaches the target on the photos they are fitted on (a percentile bootstrap that
draws whole lesions), and whose lower bound of malignant sensitivity still reaches the target
when those photos are taken under every mild shift of :mod:`training.shifts`.

The rule keeps its form (a case is referred when mel, bcc or akiec reaches its threshold);
by default the three thresholds are one value, the highest that meets every constraint.
Cross-validated on the validation split (fitted on four fifths of its lesions, measured on the
fifth, twice over), that form referred as many malignant photos as one quantile of each class'
own probabilities, or thresholds in proportion to each class' prevalence, at a specificity as
high or higher (README, "Operating point").

Numpy only: no TensorFlow, no Django.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.preprocessing import CLASSES, MALIGNANT_CLASSES

MALIGNANT_INDEX = [CLASSES.index(name) for name in MALIGNANT_CLASSES]
MELANOMA = CLASSES.index("mel")


def lesion_bootstrap_weights(groups: Sequence | None, n: int, draws: int = 2000, seed: int = 0) -> np.ndarray:
    """(draws, n) weights: how often each photo's lesion was drawn in each bootstrap sample.

    Photos of one lesion are not independent, so whole lesions are drawn with replacement and
    every photo of a drawn lesion comes along; without groups each photo is its own lesion.
    """
    _, group_index = np.unique(np.arange(n) if groups is None else np.asarray(groups), return_inverse=True)
    n_groups = int(group_index.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=draws)
    return counts[:, group_index].astype(float)


def refer_mask(probabilities: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """True where any malignant class reaches its threshold (inference.triage's rule, vectorised)."""
    probabilities = np.asarray(probabilities)
    mask = np.zeros(len(probabilities), dtype=bool)
    for name, threshold in thresholds.items():
        mask |= probabilities[:, CLASSES.index(name)] >= threshold
    return mask


def share(weights: np.ndarray, mask: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Per bootstrap draw: the weighted share of ``mask`` photos that are ``hit``."""
    total = weights @ mask.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ (mask & hit).astype(float)) / total


@dataclass
class Fit:
    thresholds: dict[str, float]
    figures: dict = field(default_factory=dict)  # what the chosen thresholds give on the fitting photos


def figures_at(
    refer: np.ndarray, labels: np.ndarray, weights: np.ndarray, level: float = 0.95
) -> dict[str, dict[str, float]]:
    """Point figure, percentile interval and count of malignant and melanoma sensitivity and of
    specificity, for the photos ``refer`` marks as referred."""
    labels = np.asarray(labels)
    refer = np.asarray(refer, dtype=bool)
    malignant = np.isin(labels, MALIGNANT_INDEX)
    melanoma = labels == MELANOMA
    tail = (1 - level) / 2 * 100
    out = {}
    for name, mask, hit in (
        ("malignant_sensitivity", malignant, refer),
        ("melanoma_sensitivity", melanoma, refer),
        ("specificity", ~malignant, ~refer),
    ):
        if not mask.any():
            continue
        draws = share(weights, mask, hit)
        out[name] = {
            "point": float((mask & hit).sum() / mask.sum()),
            "low": float(np.nanpercentile(draws, tail)),
            "high": float(np.nanpercentile(draws, 100 - tail)),
            "count": int(mask.sum()),
        }
    return out


def fit_bounded_thresholds(
    probabilities: np.ndarray,
    labels: np.ndarray,
    groups: Sequence | None = None,
    *,
    lower_bound: float = 0.95,
    melanoma_lower_bound: float | None = 0.95,
    shifted: Mapping[str, np.ndarray] | None = None,
    shifted_sensitivity: float = 0.95,
    shape: Mapping[str, float] | None = None,
    level: float = 0.95,
    draws: int = 2000,
    seed: int = 0,
) -> Fit:
    """The highest thresholds (fewest false alarms) whose interval bounds meet the targets.

    ``probabilities`` (N, 7) calibrated, ``labels`` (N,) class indices, ``groups`` one lesion id
    per photo. The thresholds are ``scale * shape[c]`` for c in mel, bcc, akiec (``shape``
    default: one threshold for all three); the scale is the highest at which, on the fitting
    photos:

    - the lower end of the ``level`` bootstrap interval of malignant sensitivity >= ``lower_bound``;
    - the same for melanoma sensitivity >= ``melanoma_lower_bound`` (None: no melanoma constraint);
    - for each array in ``shifted`` (the same photos under a shift, same order): the lower end
      of the same interval of malignant sensitivity >= ``shifted_sensitivity``.

    Every constraint only gets harder as the scale rises, and between two malignant photos'
    scores (as taken or shifted) the sensitivities do not change, so a binary search over those
    scores finds it.
    When even referring every malignant photo breaks a constraint, that lowest scale is
    returned and ``figures["met"]`` is False.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    malignant = np.isin(labels, MALIGNANT_INDEX)
    if not malignant.any():
        raise ValueError("the fitting photos hold no malignant photo")
    melanoma = labels == MELANOMA
    shape = dict(shape or {name: 1.0 for name in MALIGNANT_CLASSES})
    weights = lesion_bootstrap_weights(groups, len(labels), draws, seed)
    tail = (1 - level) / 2 * 100
    shifted = dict(shifted or {})

    def at(scale: float) -> dict[str, float]:
        return {name: float(scale * factor) for name, factor in shape.items()}

    def meets(candidate: dict[str, float]) -> bool:
        refer = refer_mask(probabilities, candidate)
        if np.nanpercentile(share(weights, malignant, refer), tail) < lower_bound:
            return False
        if melanoma_lower_bound is not None and melanoma.any():
            if np.nanpercentile(share(weights, melanoma, refer), tail) < melanoma_lower_bound:
                return False
        return all(
            np.nanpercentile(share(weights, malignant, refer_mask(array, candidate)), tail) >= shifted_sensitivity
            for array in shifted.values()
        )

    # A photo is referred when its highest probability-to-shape ratio reaches the scale; the
    # sensitivities change only at a malignant photo's ratio, as taken or under a shift.
    def ratios(array: np.ndarray) -> np.ndarray:
        return np.max([array[:, CLASSES.index(name)] / factor for name, factor in shape.items()], axis=0)[malignant]

    candidates = np.unique(np.concatenate([ratios(probabilities), *(ratios(array) for array in shifted.values())]))
    low, high, found = 0, len(candidates) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if meets(at(candidates[middle])):
            found, low = middle, middle + 1
        else:
            high = middle - 1
    chosen = at(candidates[found if found is not None else 0])
    figures = figures_at(refer_mask(probabilities, chosen), labels, weights, level)
    figures["met"] = found is not None
    figures["shifted_malignant_sensitivity"] = {
        name: float(refer_mask(array, chosen)[malignant].mean()) for name, array in shifted.items()
    }
    figures["shifted_malignant_sensitivity_low"] = {
        name: float(np.nanpercentile(share(weights, malignant, refer_mask(array, chosen)), tail))
        for name, array in shifted.items()
    }
    return Fit(thresholds=chosen, figures=figures)


# --- A new artifact version: an existing network with its operating point and gate refitted ---
MILD_REFERENCE_RATE = 0.005  # share of the reference photos nearest each class mean the gate may turn back
GATE_VARIANTS = {  # how the per-class thresholds are read from the reference photos
    "v3: own quantile per class mean, one blur and detail threshold": {"pooled_tail": False, "quality_by_class": False},
    "own or shared-tail quantile, one blur and detail threshold": {"pooled_tail": True, "quality_by_class": False},
    "v4: own or shared-tail quantile, blur and detail per class mean": {"pooled_tail": True, "quality_by_class": True},
}


def fit_lesion_gate(
    base, reference: list[dict], severe: dict, *, pooled_tail: bool = True, quality_by_class: bool = True
):
    """The served gate from ``base`` (training.gate.fit_gate's statistics): out-of-domain thresholds
    per class mean and quality thresholds, all read from ``reference`` (validation photos as taken
    and under every mild shift) and ``severe`` (validation photos severely degraded, by kind).
    Returns the gate and what the manifest records of how."""
    from training import gate as gate_fit

    gate, extra = gate_fit.fit_class_thresholds(
        base, reference, rate=MILD_REFERENCE_RATE, energy_weight=0.0, pooled_tail=pooled_tail
    )
    gate = gate_fit.midway_quality_thresholds(gate, reference, severe)
    if quality_by_class:
        gate, quality_extra = gate_fit.class_quality_thresholds(gate, reference)
        extra.update(quality_extra)
    return gate, extra


def lesion_folds(labels, groups, folds: int, seed: int) -> np.ndarray:
    """The fold of each photo: its lesions dealt to ``folds`` folds kind by kind, in a random order
    (``seed``), one count running across the kinds; every photo of a lesion in the same fold."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    lesions = np.unique(groups)
    lesion_label = {lesion: labels[groups == lesion][0] for lesion in lesions}
    rng = np.random.default_rng(seed)
    fold_of, dealt = {}, 0
    for kind in np.unique(labels):
        of_kind = [lesion for lesion in lesions if lesion_label[lesion] == kind]
        rng.shuffle(of_kind)
        for lesion in of_kind:
            fold_of[lesion] = dealt % folds
            dealt += 1
    return np.array([fold_of[lesion] for lesion in groups])


def cross_fitted_gates(
    base,
    val: dict,
    mild: dict[str, dict],
    val_severe: dict,
    labels,
    groups,
    *,
    ood: dict | None = None,
    folds: int = 5,
    seeds=(0, 1, 2),
) -> dict[str, dict[str, dict[str, float]]]:
    """Each of GATE_VARIANTS fitted on (folds - 1) / folds of the validation lesions and measured on
    the rest, every fold and seed. Validation only: this is how the served variant was chosen.

    Per variant: ``taken`` and ``mild``, the share of each kind's held-out photos turned back, as
    taken and under the mild shifts; ``caught``, what it must still turn back: the held-out
    photos severely degraded (``severe_<kind>``) and, given ``ood``, the out-of-domain images
    (``out_of_domain``, the same images every fold). Folds: :func:`lesion_folds`. ``base`` gives
    the statistics (training split) and the single out-of-domain threshold that a class mean no
    fitted photo is nearest to falls back on.
    """
    from training import gate as gate_fit

    labels, groups = np.asarray(labels), np.asarray(groups)

    def part(described: dict, keep: np.ndarray) -> dict:
        return {key: value[keep] for key, value in described.items()}

    def turned_back(gate, described: dict) -> np.ndarray:
        return np.array(gate_fit.decisions(gate, described)) != "ok"

    dealings = [lesion_folds(labels, groups, folds, seed) for seed in seeds]
    figures = {}
    for name, options in GATE_VARIANTS.items():
        back = {"taken": {}, "mild": {}}
        caught: dict[str, list] = {}
        for fold in dealings:
            for held in range(folds):
                fit_on, measure_on = fold != held, fold == held
                reference = [part(val, fit_on), *(part(d, fit_on) for d in mild.values())]
                severe = {kind: part(d, fit_on) for kind, d in val_severe.items()}
                gate, _ = fit_lesion_gate(base, reference, severe, **options)
                for where, sets in (("taken", [val]), ("mild", list(mild.values()))):
                    for described in sets:
                        turned = turned_back(gate, part(described, measure_on))
                        for kind, hit in zip(labels[measure_on], turned, strict=True):
                            back[where].setdefault(CLASSES[kind], []).append(hit)
                for kind, described in val_severe.items():
                    caught.setdefault(f"severe_{kind}", []).extend(turned_back(gate, part(described, measure_on)))
                if ood is not None:
                    caught.setdefault("out_of_domain", []).extend(turned_back(gate, ood))
        figures[name] = {
            where: {kind: float(np.mean(by_kind[kind])) for kind in CLASSES if kind in by_kind}
            | {"all": float(np.mean([hit for hits in by_kind.values() for hit in hits]))}
            for where, by_kind in back.items()
        }
        figures[name]["caught"] = {key: float(np.mean(hits)) for key, hits in caught.items()}
    return figures


def malignant_sum(probabilities: np.ndarray) -> np.ndarray:
    """The same photos with the malignant classes' sum in the melanoma column and every other class at 0:
    ``refer_mask`` with one threshold then refers on the sum (the rule compared in compare-thresholds)."""
    summed = np.zeros_like(np.asarray(probabilities, dtype=np.float64))
    summed[:, MELANOMA] = np.asarray(probabilities)[:, MALIGNANT_INDEX].sum(axis=1)
    return summed


THRESHOLD_RULES = {  # how a photo's probabilities are read against the one referral threshold
    "highest malignant class (served)": lambda probabilities: probabilities,
    "sum of the malignant classes": malignant_sum,
}


def cross_fitted_thresholds(
    probabilities: np.ndarray,
    labels,
    groups,
    shifted: Mapping[str, np.ndarray],
    *,
    lower_bound: float = 0.95,
    folds: int = 5,
    seeds=(0, 1, 2),
) -> dict[str, dict[str, float]]:
    """Each of THRESHOLD_RULES fitted as ``build`` fits the served thresholds (fit_bounded_thresholds with
    every mild shift) on (folds - 1) / folds of the validation lesions and measured on the rest, every
    fold and seed: the held-out malignant and melanoma sensitivity and specificity, averaged over the
    seeds. Validation only: how a rule or a network is judged before it is built."""
    probabilities, labels, groups = np.asarray(probabilities), np.asarray(labels), np.asarray(groups)
    malignant = np.isin(labels, MALIGNANT_INDEX)
    melanoma = labels == MELANOMA
    dealings = [lesion_folds(labels, groups, folds, seed) for seed in seeds]
    figures = {}
    for name, read in THRESHOLD_RULES.items():
        rows = []
        for fold in dealings:
            refer = np.zeros(len(labels), dtype=bool)
            for held in range(folds):
                fit_on, measure_on = fold != held, fold == held
                fit = fit_bounded_thresholds(
                    read(probabilities[fit_on]),
                    labels[fit_on],
                    groups[fit_on],
                    lower_bound=lower_bound,
                    melanoma_lower_bound=lower_bound,
                    shifted={shift: read(array[fit_on]) for shift, array in shifted.items()},
                    shifted_sensitivity=lower_bound,
                )
                refer[measure_on] = refer_mask(read(probabilities[measure_on]), fit.thresholds)
            rows.append((refer[malignant].mean(), refer[melanoma].mean(), (~refer[~malignant]).mean()))
        mean = np.mean(rows, axis=0)
        figures[name] = dict(
            zip(("malignant_sensitivity", "melanoma_sensitivity", "specificity"), map(float, mean), strict=True)
        )
    return figures


def compare_thresholds(*, source: Path, lower_bound: float = 0.95, **caches) -> dict:
    """What the referral thresholds of ``source``'s network cost, on the validation split: the threshold
    and specificity each mild shift alone would allow (the lowest binds), and THRESHOLD_RULES cross-fitted
    (cross_fitted_thresholds). ``caches``: as for described_sets."""
    from sklearn.metrics import roc_auc_score

    _, _, predictor, _, sets, labels, groups, mild = described_sets(Path(source), **caches)
    calibration = predictor.calibration
    val = calibration.probabilities(sets["val"]["logits"])
    shifted = {name: calibration.probabilities(d["logits"]) for name, d in mild.items()}
    y, g = labels["val"], groups["val"]
    malignant = np.isin(y, MALIGNANT_INDEX)

    def auc(probabilities):
        return roc_auc_score(malignant, probabilities[:, MALIGNANT_INDEX].sum(axis=1))

    rows = []
    for name, array in {"none": None, **shifted}.items():
        fit = fit_bounded_thresholds(
            val,
            y,
            g,
            lower_bound=lower_bound,
            melanoma_lower_bound=lower_bound,
            shifted={} if array is None else {name: array},
            shifted_sensitivity=lower_bound,
        )
        figures = fit.figures
        rows.append(
            [
                name,
                f"{auc(val if array is None else array):.3f}",
                f"{fit.thresholds['mel']:.4f}",
                f"{figures['specificity']['point']:.3f}",
            ]
        )
    name = Path(source).name
    print(f"Validation, {name}'s network: the threshold each mild shift alone allows (lower bounds {lower_bound}):")
    print(_table(rows, ["mild shift", "malignant ROC AUC", "threshold", "specificity"]))
    figures = cross_fitted_thresholds(val, y, g, shifted, lower_bound=lower_bound)
    rows = [[name, *(f"{value:.3f}" for value in by.values())] for name, by in figures.items()]
    print("\nHeld out of the fit (5 lesion folds x 3 seeds), thresholds fitted as build fits them:")
    print(_table(rows, ["rule", "malignant sensitivity", "melanoma sensitivity", "specificity"]))
    return figures


def _referral_figures(refer: np.ndarray, labels: np.ndarray, thresholds: Mapping[str, float]) -> dict:
    """The thresholds, and the malignant and melanoma sensitivity and specificity of ``refer``;
    NaN where the photos hold none of a kind."""
    malignant, melanoma = np.isin(labels, MALIGNANT_INDEX), labels == MELANOMA

    def mean(mask: np.ndarray) -> float:
        return float(mask.mean()) if mask.size else float("nan")

    return {
        "thresholds": {name: float(thresholds[name]) for name in MALIGNANT_CLASSES},
        "malignant_sensitivity": mean(refer[malignant]),
        "melanoma_sensitivity": mean(refer[melanoma]),
        "specificity": mean(~refer[~malignant]),
    }


def _check_share(sensitivity: float) -> None:
    if not 0 < sensitivity <= 1:
        raise ValueError(f"sensitivity is a share between 0 and 1, not {sensitivity}")


def best_threshold(probabilities: np.ndarray, labels, *, sensitivity: float) -> dict:
    """The highest single threshold (mel, bcc and akiec alike) at which malignant and melanoma
    sensitivity both reach ``sensitivity`` on these photos, with the figures there: the most
    specificity one threshold of the rule could give them.

    Photos where it is measured are photos it was chosen on, so this is a ceiling, never an
    operating point: it tells whether a target is within a network's reach at all."""
    _check_share(sensitivity)
    probabilities, labels = np.asarray(probabilities, dtype=np.float64), np.asarray(labels)
    malignant = np.isin(labels, MALIGNANT_INDEX)
    if not malignant.any():
        raise ValueError("the photos hold no malignant photo")
    highest = probabilities[:, MALIGNANT_INDEX].max(axis=1)
    # Both sensitivities only fall as the threshold rises, and change only at a malignant photo's
    # score; at the lowest one every malignant photo is referred, so the search always ends.
    for threshold in np.unique(highest[malignant])[::-1]:
        found = _referral_figures(highest >= threshold, labels, dict.fromkeys(MALIGNANT_CLASSES, threshold))
        if found["malignant_sensitivity"] >= sensitivity and not found["melanoma_sensitivity"] < sensitivity:
            return found
    raise AssertionError("unreachable: the lowest malignant score refers every malignant photo")


CLASS_THRESHOLD_GRID = np.geomspace(0.002, 0.9, 60)  # what best_class_thresholds tries for each class


def best_class_thresholds(probabilities: np.ndarray, labels, *, sensitivity: float, grid=CLASS_THRESHOLD_GRID) -> dict:
    """As best_threshold, with a threshold of its own for each of akiec, bcc and mel, each taken
    from ``grid``: the most specificity three thresholds chosen on these photos could give them.

    Three numbers fitted to the photos they are measured on follow those photos' accidents (a
    melanoma referred through its carcinoma probability), so this ceiling is looser still."""
    _check_share(sensitivity)
    probabilities, labels, grid = np.asarray(probabilities, dtype=np.float64), np.asarray(labels), np.asarray(grid)
    malignant, melanoma = np.isin(labels, MALIGNANT_INDEX), labels == MELANOMA
    if not malignant.any():
        raise ValueError("the photos hold no malignant photo")
    # (photos, grid) for each malignant class, in MALIGNANT_CLASSES order: does the photo reach it?
    reached = [probabilities[:, index][:, None] >= grid[None, :] for index in MALIGNANT_INDEX]
    best = None
    for first in range(len(grid)):
        for second in range(len(grid)):
            refer = (reached[0][:, first] | reached[1][:, second])[:, None] | reached[2]
            meets = refer[malignant].mean(axis=0) >= sensitivity
            if melanoma.any():
                meets &= refer[melanoma].mean(axis=0) >= sensitivity
            if not meets.any():
                continue
            specificity = np.where(meets, (~refer[~malignant]).mean(axis=0), -1.0)
            third = int(np.argmax(specificity))
            if best is None or specificity[third] > best[0]:
                best = (specificity[third], (first, second, third))
    if best is None:
        raise ValueError(f"no thresholds on the grid refer {sensitivity} of the malignant photos")
    thresholds = {name: float(grid[at]) for name, at in zip(MALIGNANT_CLASSES, best[1], strict=True)}
    return _referral_figures(refer_mask(probabilities, thresholds), labels, thresholds)


def reachable(*, source: Path, split: str = "test", sensitivity: float = 0.96, **caches) -> dict[str, dict]:
    """On ``split``: the figures of ``source``'s served thresholds, beside the most specificity the
    thresholds could give while referring ``sensitivity`` of the malignant and of the melanoma
    photos when they are chosen on that split itself: one threshold for each of THRESHOLD_RULES
    (best_threshold), and one per class (best_class_thresholds). Where such a ceiling misses a
    specificity target, no thresholds of that form meet it on the split. ``caches``: as for
    described_sets."""
    manifest, _, predictor, _, sets, labels, _, _ = described_sets(Path(source), **caches)
    probabilities = predictor.calibration.probabilities(sets[split]["logits"])
    y = np.asarray(labels[split])
    served = manifest["thresholds"]
    figures = {
        "served thresholds (fitted on validation)": _referral_figures(refer_mask(probabilities, served), y, served)
    }
    for name, read in THRESHOLD_RULES.items():
        figures[f"{name}, best threshold chosen on {split}"] = best_threshold(
            read(probabilities), y, sensitivity=sensitivity
        )
    figures[f"a threshold per class, best chosen on {split}"] = best_class_thresholds(
        probabilities, y, sensitivity=sensitivity
    )

    def threshold_text(thresholds: dict) -> str:
        if len(set(thresholds.values())) == 1:
            return f"{next(iter(thresholds.values())):.4f}"
        return " / ".join(f"{name} {value:.4f}" for name, value in thresholds.items())

    rows = [
        [name, threshold_text(by["thresholds"]), *(f"{by[key]:.3f}" for key in list(by)[1:])]
        for name, by in figures.items()
    ]
    title = {"val": "Validation", "test": "Test"}.get(split, split)
    print(
        f"{title} split, {Path(source).name}: the most specificity thresholds chosen on this split could "
        f"give at malignant and melanoma sensitivity >= {sensitivity} (a ceiling, not an operating point):"
    )
    print(_table(rows, ["rule", "thresholds", "malignant sensitivity", "melanoma sensitivity", "specificity"]))
    return figures


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def _interval(figure: dict) -> str:
    return f"{figure['point']:.3f} ({figure['low']:.3f} to {figure['high']:.3f}, n = {figure['count']})"


def report_markdown(section: dict, gate_table: dict) -> str:
    """The report's sections on the operating point and on what the gate turns back, per class."""
    fit, test = section["fitted_on_validation"], section["test"]
    rows = [
        [name.replace("_", " "), _interval(fit[name]), _interval(test[name])]
        for name in ("malignant_sensitivity", "melanoma_sensitivity", "specificity")
    ]
    shifted = ", ".join(
        f"{name.replace('_', ' ')} {value:.3f}" for name, value in section["shifted_validation"].items()
    )
    gate_rows = [
        [
            name,
            str(gate_table["val"][name]["photos"]),
            f"{gate_table['val'][name]['turned_back']:.1%}",
            str(gate_table["test"][name]["photos"]),
            f"{gate_table['test'][name]['turned_back']:.1%}",
        ]
        for name in gate_table["test"]
    ]
    return "\n".join(
        [
            "## Operating point",
            "",
            "A case is referred when melanoma, basal cell carcinoma or actinic keratosis reaches "
            + ", ".join(f"{k} {v:.3f}" for k, v in section["thresholds"].items())
            + ". The thresholds were placed on the validation split so that the **lower end** of the 95% "
            "interval of malignant sensitivity and of melanoma sensitivity (2,000 bootstrap draws of "
            f"whole lesions) is at least {section['lower_bound']:.2f}, and so that the same lower end for the "
            f"validation photos under every mild shift of training.shifts is at least "
            f"{section['shifted_sensitivity']:.2f}; of the thresholds that do, these refer the fewest benign photos.",
            "",
            _table(rows, ["figure", "validation (fitted here), 95% interval", "test split, 95% interval"]),
            "",
            f"Malignant sensitivity of the validation photos under each mild shift: {shifted}.",
            "",
            (
                "The published anchor for an autonomous skin-cancer AI in NHS pathways (DERM): 97% sensitivity at 71% "
                "specificity for malignant lesions. This network ranks malignant above benign lesions with a test "
                f"ROC AUC of {section['test_roc_auc']:.3f}, so an interval bound of 0.95 costs specificity."
            ),
            "",
            "## Photos the gate turns back, by kind of lesion",
            "",
            (
                "Each photo's out-of-domain score (the Mahalanobis distance of its features, the energy term "
                f"weighted {section['gate_energy_weight']:g}) is judged against the validation photos nearest to "
                f"the same class mean, as taken and under every mild shift: at most {MILD_REFERENCE_RATE:.1%} of "
                "those are turned back per class mean (the class' own quantile, or the same quantile of all classes' "
                "scores measured from each class' median in units of its interquartile range, whichever is higher). "
                "Each quality threshold sits halfway between the least usual of those photos and the value that "
                "still catches 97% of the severely degraded ones; the detail floor and the blur ceiling then follow "
                "each class mean's median, so a kind of lesion that is smooth by nature is not called blurred."
            ),
            "",
            _table(gate_rows, ["class", "validation photos", "turned back", "test photos", "turned back"]),
            "",
        ]
    )


def rewrite_report(text: str, source_version: str, model_version: str, test_metrics: dict) -> str:
    """The source's report for the new version: its name, its referral figures, and without the
    source's own threshold and gate sections (the new ones are appended)."""
    import re

    text = text.replace(source_version, model_version)
    triage = test_metrics["malignant_vs_benign"]
    for label, value in (
        ("melanoma photos referred at the shipped thresholds", triage["melanoma_referred"]),
        ("malignant sensitivity at the shipped thresholds", triage["sensitivity"]),
        ("malignant specificity at the shipped thresholds", triage["specificity"]),
    ):
        text = re.sub(rf"^\| {re.escape(label)} \| [^|]* \|$", f"| {label} | {value:.3f} |", text, flags=re.M)
    for heading in ("Triage thresholds", "Photo gate"):
        text = re.sub(rf"^## {heading}\n.*?(?=^## |\Z)", "", text, flags=re.M | re.S)
    note = (
        f"{model_version} serves the network and calibration of {source_version} unchanged; its referral "
        "thresholds and its photo gate are new (the last two sections); the architecture comparison is "
        f"{source_version}'s, at its thresholds."
    )
    first_break = text.index("\n\n") + 2
    return text[:first_break] + note + "\n\n" + text[first_break:]


def described_sets(source: Path, *, data_dir, cache_dir, describe_cache, stress_cache):
    """What the network of the artifact ``source`` makes of every set the operating point and gate
    are fitted and measured on: (manifest, network, predictor, splits, sets, labels, groups, mild),
    ``network`` being the manifest without its gate and ``mild`` the validation photos under each
    mild shift of training.shifts."""
    from inference.artifact import Artifact
    from inference.predictor import Predictor
    from training import gate as gate_fit
    from training import shifts
    from training.stress import described, split_records

    manifest = gate_fit.verified_manifest(source)
    network = {key: value for key, value in manifest.items() if key != "gate"}
    predictor = Predictor(Artifact(source, network))
    split_csv = source / "report" / "split.csv"
    splits = gate_fit.split_pixels(data_dir, split_csv, predictor.artifact.input_size, cache_dir)
    sets = gate_fit.describe_sets(predictor, splits, describe_cache=describe_cache)
    records = {name: split_records(split_csv, data_dir, name) for name in ("val", "test")}
    labels = {name: np.array([r["label"] for r in rows]) for name, rows in records.items()}
    groups = {name: [r["lesion_id"] for r in rows] for name, rows in records.items()}
    val_ids = [r["image_id"] for r in records["val"]]
    mild = {name: described(predictor, data_dir, val_ids, name, "mild", stress_cache, "val") for name in shifts.SHIFTS}
    return manifest, network, predictor, splits, sets, labels, groups, mild


def compare_gates(*, source: Path, **caches) -> dict:
    """GATE_VARIANTS cross-fitted on the validation split (cross_fitted_gates), printed as a table.
    ``caches``: as for described_sets."""
    from training import gate as gate_fit

    *_, splits, sets, labels, groups, mild = described_sets(Path(source), **caches)
    base, _ = gate_fit.fit_gate(
        train=sets["train"], train_labels=splits["train"][1], val=sets["val"], val_severe=sets["val_severe"]
    )
    figures = cross_fitted_gates(
        base, sets["val"], mild, sets["val_severe"], labels["val"], groups["val"], ood=sets["ood"]
    )
    kinds = [*CLASSES, "all"]
    rows = [[name, *(f"{by['taken'][k]:.1%} / {by['mild'][k]:.1%}" for k in kinds)] for name, by in figures.items()]
    print("Validation photos turned back, held out of the fit (5 lesion folds x 3 seeds), as taken / mildly shifted:")
    print(_table(rows, ["gate", *kinds]))
    caught = list(next(iter(figures.values()))["caught"])
    rows = [[name, *(f"{by['caught'][k]:.1%}" for k in caught)] for name, by in figures.items()]
    print("\nWhat each still turns back: held-out validation photos severely degraded, and the out-of-domain images:")
    print(_table(rows, ["gate", *caught]))
    return figures


def build(
    *,
    source: Path,
    model_version: str,
    data_dir: Path,
    cache_dir: Path | None,
    describe_cache: Path | None,
    stress_cache: Path | None,
    artifacts_dir: Path,
    make_default: bool = False,
    lower_bound: float = 0.95,
) -> Path:
    """A new artifact version: ``source``'s network and calibration, thresholds placed on interval
    bounds and a gate with one threshold per class mean."""
    import datetime as dt
    import shutil

    from inference.artifact import FORMAT_VERSION, sha256_file
    from training import gate as gate_fit
    from training import metrics as metrics_module
    from training.stress import refers

    source = Path(source)
    destination = Path(artifacts_dir) / model_version
    if destination.exists():
        raise SystemExit(f"{destination} exists; an artifact version is never overwritten")
    manifest, network, predictor, splits, sets, labels, groups, mild = described_sets(
        source, data_dir=data_dir, cache_dir=cache_dir, describe_cache=describe_cache, stress_cache=stress_cache
    )
    calibration = predictor.calibration
    probabilities = {name: calibration.probabilities(sets[name]["logits"]) for name in ("val", "test")}

    # The referral thresholds: interval bounds on validation, held under every mild shift there.
    fit = fit_bounded_thresholds(
        probabilities["val"],
        labels["val"],
        groups["val"],
        lower_bound=lower_bound,
        melanoma_lower_bound=lower_bound,
        shifted={name: calibration.probabilities(d["logits"]) for name, d in mild.items()},
        shifted_sensitivity=lower_bound,
    )
    if not fit.figures["met"]:
        raise SystemExit(f"no thresholds meet the bounds on validation: {json.dumps(fit.figures)}")
    thresholds = fit.thresholds

    # The gate: v2's statistics and quality thresholds, one out-of-domain threshold per class mean.
    base, section = gate_fit.fit_gate(
        train=sets["train"],
        train_labels=splits["train"][1],
        val=sets["val"],
        val_severe=sets["val_severe"],
    )
    gate, extra = fit_lesion_gate(base, [sets["val"], *mild.values()], sets["val_severe"])
    section["thresholds"] = gate.all_thresholds()
    section["method"] += (
        " From v3 the energy term's weight is 0 and the out-of-domain threshold is set per class mean: the "
        f"{1 - MILD_REFERENCE_RATE:.1%} quantile of the scores of the validation photos nearest that class mean, "
        "as taken and under every mild shift of training.shifts; from v4 the higher of that and the same quantile "
        "of all classes' scores in units of each class' median and interquartile range, and the blur and detail "
        "thresholds per class mean (training.gate.class_quality_thresholds)."
    )
    section["chosen_on"] = (
        "validation split: each quality threshold halfway between the 0.15% quantile of the validation photos "
        "(as taken and mildly shifted) and the value that catches 97% of the severely degraded ones, then scaled to "
        "each class mean's median detail and blur; the out-of-domain "
        f"thresholds {MILD_REFERENCE_RATE:.1%} of the validation photos (as taken and mildly shifted) nearest each "
        "class mean"
    )
    section.update(extra)
    section["validation"] = {
        "lesions_turned_back": gate_fit.turned_back_share(gate, sets["val"]),
        **{f"severe_{k}_turned_back": gate_fit.turned_back_share(gate, d) for k, d in sets["val_severe"].items()},
    }
    section["test"] = gate_fit.test_figures(gate, sets["test"], sets["test_severe"], sets["ood"])
    gate_table = {name: gate_fit.turned_back_by_class(gate, sets[name], labels[name]) for name in ("val", "test")}
    section["by_class"] = gate_table

    # Test figures: every photo at the thresholds, and the portal's rule with the gate.
    prevalence = predictor.prevalence
    test_metrics = metrics_module.evaluate(probabilities["test"], labels["test"], thresholds, prevalence=prevalence)
    val_metrics = metrics_module.evaluate(probabilities["val"], labels["val"], thresholds, prevalence=prevalence)
    weights = lesion_bootstrap_weights(groups["test"], len(labels["test"]))
    served = refers(probabilities["test"], gate_fit.decisions(gate, sets["test"]), thresholds)
    from inference.calibration import balanced_index

    intervals = metrics_module.bootstrap_intervals(
        labels["test"],
        balanced_index(probabilities["test"], prevalence),
        refer_mask(probabilities["test"], thresholds),
        groups["test"],
    )
    operating_point = {
        "method": "lower end of the lesion-grouped bootstrap 95% interval on the validation split, held under "
        "every mild shift of training.shifts (training.operating_point)",
        "lower_bound": lower_bound,
        "shifted_sensitivity": lower_bound,
        "thresholds": thresholds,
        "fitted_on_validation": {k: v for k, v in fit.figures.items() if isinstance(v, dict) and "point" in v},
        "shifted_validation": fit.figures["shifted_malignant_sensitivity"],
        "test": figures_at(refer_mask(probabilities["test"], thresholds), labels["test"], weights),
        "test_with_gate": figures_at(served, labels["test"], weights),
        "test_roc_auc": float(test_metrics["malignant_vs_benign"]["roc_auc"]),
        "gate_energy_weight": gate.energy_weight,
    }

    partial = destination.with_name(destination.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    keep = [name for name in manifest["files"] if name not in ("gate.npz", "thresholds.json", "model.keras")]
    for name in keep:
        (partial / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, partial / name)
    (partial / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n")
    gate_fit.write_into(partial, gate, section)
    report = partial / "report" / "report.md"
    text = rewrite_report(report.read_text(), manifest["model_version"], model_version, test_metrics)
    report.write_text(text.rstrip() + "\n\n" + report_markdown(operating_point, gate_table) + "\n")
    files = {str(p.relative_to(partial)): sha256_file(p) for p in sorted(partial.rglob("*")) if p.is_file()}
    new = {
        **network,
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "derived_from": {
            "model_version": manifest["model_version"],
            "note": "the same network and calibration; referral thresholds placed on interval bounds and a photo "
            "gate with one threshold per class mean (training.operating_point build); the Keras file stays in "
            f"{manifest['model_version']}",
        },
        "thresholds": thresholds,
        "thresholds_file": "thresholds.json",
        "threshold_target_sensitivity": None,
        "operating_point": operating_point,
        "metrics": {
            **manifest.get("metrics", {}),
            "test": metrics_module.summary(test_metrics),
            "test_intervals": intervals,
            "validation": metrics_module.summary(val_metrics),
        },
        "gate": section,
        "files": files,
    }
    new.pop("keras_model", None)
    return gate_fit.publish(partial, destination, new, make_default=make_default)


def main(argv: list[str] | None = None) -> Path | None:
    import argparse

    from inference.artifact import ARTIFACTS_DIR
    from training.data import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--source", type=Path, required=True, help="the artifact whose network is reused")
    common.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    common.add_argument("--cache-dir", type=Path, help="model-pixel cache shared with training.train")
    common.add_argument("--describe-cache", type=Path, help="keep what the model made of each split here")
    common.add_argument("--stress-cache", type=Path, help="keep what the model made of each shifted set here")
    b = commands.add_parser(
        "build", parents=[common], help="a new artifact version: thresholds on interval bounds, gate per class"
    )
    b.add_argument("--model-version", required=True)
    b.add_argument("--artifacts-dir", type=Path, default=ARTIFACTS_DIR)
    b.add_argument("--lower-bound", type=float, default=0.95)
    b.add_argument("--make-default", action="store_true")
    commands.add_parser(
        "compare-gates", parents=[common], help="the gate variants cross-fitted on the validation split"
    )
    commands.add_parser(
        "compare-thresholds",
        parents=[common],
        help="what each mild shift costs the thresholds, and the referral rules cross-fitted on the validation split",
    )
    r = commands.add_parser(
        "reachable",
        parents=[common],
        help="the most specificity any threshold could give on a split at a sensitivity (a ceiling, not a fit)",
    )
    r.add_argument("--split", choices=("val", "test"), default="test")
    r.add_argument("--sensitivity", type=float, default=0.96)
    args = parser.parse_args(argv)
    caches = dict(
        data_dir=args.data, cache_dir=args.cache_dir, describe_cache=args.describe_cache, stress_cache=args.stress_cache
    )
    if args.command == "compare-gates":
        compare_gates(source=args.source, **caches)
        return None
    if args.command == "compare-thresholds":
        compare_thresholds(source=args.source, **caches)
        return None
    if args.command == "reachable":
        reachable(source=args.source, split=args.split, sensitivity=args.sensitivity, **caches)
        return None
    destination = build(
        source=args.source,
        model_version=args.model_version,
        **caches,
        artifacts_dir=args.artifacts_dir,
        make_default=args.make_default,
        lower_bound=args.lower_bound,
    )
    manifest = json.loads((destination / "manifest.json").read_text())
    print(json.dumps({"artifact": str(destination), "operating_point": manifest["operating_point"]}, indent=2))
    print(json.dumps({"gate": manifest["gate"]["test"], "by_class": manifest["gate"]["by_class"]}, indent=2))
    return destination


if __name__ == "__main__":
    main()
