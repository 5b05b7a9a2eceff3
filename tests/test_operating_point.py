"""Referral thresholds placed on interval bounds (training.operating_point), the photo shifts of the
stress test (training.shifts) and the referral rule it scores (training.stress)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.preprocessing import CLASSES
from training import shifts
from training.operating_point import (
    figures_at,
    fit_bounded_thresholds,
    lesion_bootstrap_weights,
    refer_mask,
)
from training.stress import refers

MEL, BCC, NV = CLASSES.index("mel"), CLASSES.index("bcc"), CLASSES.index("nv")


def synthetic(n_malignant: int, n_benign: int, seed: int, photos_per_lesion: int = 1):
    """Calibrated-looking probabilities: malignant photos put more mass on mel or bcc than benign ones."""
    rng = np.random.default_rng(seed)
    labels = np.array([MEL] * (n_malignant // 2) + [BCC] * (n_malignant - n_malignant // 2) + [NV] * n_benign)
    probabilities = np.full((len(labels), len(CLASSES)), 0.01)
    malignant_score = np.where(labels == NV, rng.beta(1.2, 12, len(labels)), rng.beta(3, 4, len(labels)))
    for row, (label, score) in enumerate(zip(labels, malignant_score, strict=True)):
        column = label if label != NV else (MEL if row % 2 else BCC)
        probabilities[row, column] = score
        probabilities[row, NV] = 1 - probabilities[row].sum() + probabilities[row, NV]
    lesions = np.arange(len(labels)) // photos_per_lesion
    return probabilities, labels, lesions


def point_fit(probabilities, labels, target):
    """The old way: the highest single threshold whose point sensitivity meets the target."""
    malignant = labels != NV
    scores = np.sort(probabilities[malignant][:, [MEL, BCC]].max(axis=1))
    value = float(scores[int(np.floor((1 - target) * len(scores)))])
    return {"mel": value, "bcc": value, "akiec": value}


def test_the_lower_interval_bound_not_the_point_estimate_meets_the_target():
    probabilities, labels, lesions = synthetic(200, 800, seed=1)
    fit = fit_bounded_thresholds(probabilities, labels, lesions, lower_bound=0.95, melanoma_lower_bound=0.95)

    assert fit.figures["met"]
    assert fit.figures["malignant_sensitivity"]["low"] >= 0.95
    assert fit.figures["melanoma_sensitivity"]["low"] >= 0.95
    # the point estimate sits well above the target: the interval's width is the margin
    assert fit.figures["malignant_sensitivity"]["point"] >= 0.97
    # placing the threshold on the point estimate instead leaves a lower bound under the target
    weights = lesion_bootstrap_weights(lesions, len(labels))
    naive = figures_at(refer_mask(probabilities, point_fit(probabilities, labels, 0.95)), labels, weights)
    assert naive["malignant_sensitivity"]["low"] < 0.95
    assert fit.thresholds["mel"] < point_fit(probabilities, labels, 0.95)["mel"]


def test_bounded_thresholds_hold_on_new_photos_from_the_same_source():
    # The source's true sensitivity at a threshold, read off a very large sample of it.
    population, population_labels, _ = synthetic(20000, 1000, seed=99)
    malignant = population_labels != NV
    bounded_short, naive_short = 0, 0
    for seed in range(20):
        probabilities, labels, lesions = synthetic(200, 800, seed=seed)
        bounded = fit_bounded_thresholds(probabilities, labels, lesions, draws=1000).thresholds
        naive = point_fit(probabilities, labels, 0.95)
        bounded_short += refer_mask(population, bounded)[malignant].mean() < 0.95
        naive_short += refer_mask(population, naive)[malignant].mean() < 0.95
    assert bounded_short <= 1  # a 95% lower bound: about one fit in 40 falls short of the target
    assert naive_short >= 5  # a threshold on the point estimate falls short about half the time


def test_photos_of_one_lesion_count_as_one_lesion_and_widen_the_interval():
    # five photos of each of 250 lesions that look alike: as photos they seem five times the evidence
    single, single_labels, _ = synthetic(50, 200, seed=3)
    probabilities, labels = np.repeat(single, 5, axis=0), np.repeat(single_labels, 5)
    lesions = np.repeat(np.arange(len(single_labels)), 5)
    as_photos = fit_bounded_thresholds(probabilities, labels, None, lower_bound=0.9, melanoma_lower_bound=None)
    as_lesions = fit_bounded_thresholds(probabilities, labels, lesions, lower_bound=0.9, melanoma_lower_bound=None)
    assert as_lesions.thresholds["mel"] < as_photos.thresholds["mel"]
    refer = refer_mask(probabilities, as_photos.thresholds)
    by_lesion = figures_at(refer, labels, lesion_bootstrap_weights(lesions, len(labels)))
    by_photo = figures_at(refer, labels, lesion_bootstrap_weights(None, len(labels)))

    def width(figures):
        return figures["malignant_sensitivity"]["high"] - figures["malignant_sensitivity"]["low"]

    assert width(by_lesion) > 1.5 * width(by_photo)


def test_a_shift_that_lowers_malignant_probabilities_lowers_the_thresholds():
    probabilities, labels, lesions = synthetic(200, 800, seed=4)
    clean = fit_bounded_thresholds(probabilities, labels, lesions)
    dimmed = probabilities.copy()
    dimmed[:, [MEL, BCC]] *= 0.6  # the same photos, read less suspiciously under a shift
    held = fit_bounded_thresholds(probabilities, labels, lesions, shifted={"dim": dimmed}, shifted_sensitivity=0.95)
    assert held.thresholds["mel"] < clean.thresholds["mel"]
    assert held.figures["shifted_malignant_sensitivity"]["dim"] >= 0.95


def test_a_shift_under_which_the_model_sees_no_malignancy_drives_the_thresholds_to_refer_everything():
    probabilities, labels, lesions = synthetic(100, 400, seed=5)
    blank = probabilities.copy()
    blank[:, [CLASSES.index(c) for c in ("akiec", "bcc", "mel")]] = 0.0
    fit = fit_bounded_thresholds(probabilities, labels, lesions, shifted={"blank": blank})
    assert set(fit.thresholds.values()) == {0.0}
    assert refer_mask(blank, fit.thresholds).all()
    with pytest.raises(ValueError):
        fit_bounded_thresholds(probabilities[labels == NV], labels[labels == NV])


def test_a_photo_that_is_not_skin_is_never_referred_and_other_turned_back_photos_are():
    probabilities = np.full((3, len(CLASSES)), 0.01)
    probabilities[:, MEL] = 0.6
    refer = refers(probabilities, ["not_skin", "not_a_lesion", "blurred"], {"mel": 0.1, "bcc": 0.1, "akiec": 0.1})
    assert refer.tolist() == [False, True, True]


# --- The shifts ---------------------------------------------------------------------------------------
def lesion_photo() -> Image.Image:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:150, 0:200]
    base = np.stack([np.full((150, 200), c, np.float32) for c in (205, 150, 125)], axis=-1)
    spot = ((x - 100) ** 2 / 900 + (y - 75) ** 2 / 500) < 1
    base[spot] = (110, 70, 50)
    return Image.fromarray(np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("name", sorted(shifts.SHIFTS))
def test_each_shift_keeps_the_photo_size_and_its_strong_strength_changes_it_more(name):
    photo = lesion_photo()
    original = np.asarray(photo, np.float32)
    mild = shifts.shifted(photo, name, "mild", seed=1)
    strong = shifts.shifted(photo, name, "strong", seed=1)
    assert mild.size == strong.size == photo.size
    change_mild = np.abs(np.asarray(mild, np.float32) - original).mean()
    change_strong = np.abs(np.asarray(strong, np.float32) - original).mean()
    assert 0 < change_mild < change_strong
    # reproducible: the same seed gives the same photo
    assert np.array_equal(np.asarray(shifts.shifted(photo, name, "mild", seed=1)), np.asarray(mild))


def test_the_stress_test_scores_each_shift_through_the_served_model_and_gate(tmp_path, capsys):
    import csv
    from pathlib import Path

    from training import stress
    from training.data import read_metadata

    data = Path(__file__).parent / "data" / "ham10000"
    split = tmp_path / "split.csv"
    with split.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "lesion_id", "dx", "split"])
        for record in read_metadata(data):
            writer.writerow([record.image_id, record.lesion_id, CLASSES[record.label], "test"])
    out = stress.main(["--data", str(data), "--split-csv", str(split), "--cache-dir", str(tmp_path / "cache")])
    printed = capsys.readouterr().out
    assert set(out) == {"none/none"} | {f"{name}/{strength}" for name in shifts.SHIFTS for strength in shifts.STRENGTHS}
    for figures in out.values():
        assert 0.0 <= figures["malignant_sensitivity"]["point"] <= 1.0
        assert figures["malignant_sensitivity"]["low"] <= figures["malignant_sensitivity"]["point"]
        assert 0.0 <= figures["turned_back"] <= 1.0
    assert "sensor_noise" in printed and "mild shifts below target:" in printed
    # the strong colour casts and blur change what the model reads: not every row is the same
    assert len({round(f["specificity"]["point"], 6) for f in out.values()}) > 1
    # a second run reads what the model made of each set from the cache
    assert stress.main(["--data", str(data), "--split-csv", str(split), "--cache-dir", str(tmp_path / "cache")]) == out


def test_gate_variants_are_compared_on_held_out_validation_lesions_only(monkeypatch):
    from tests.test_gate import small_gate
    from training import gate as gate_fit
    from training import operating_point
    from training.operating_point import GATE_VARIANTS, cross_fitted_gates

    rng = np.random.default_rng(8)
    n = 240  # 120 lesions of each of two kinds, two photos each
    labels = np.repeat([0, 1], n // 2)
    groups = np.array([f"lesion-{i // 2}" for i in range(n)])
    features = np.where(labels[:, None] == 0, [1.0, 0, 0, 0], [0, 1.0, 0, 0]) + rng.normal(0, 0.05, (n, 4))
    # kind 1 is smooth by nature: little detail, a higher blur measure, in sharp photos
    detail = np.where(labels == 0, rng.normal(2.4, 0.3, n), rng.normal(1.0, 0.12, n))
    blur = np.where(labels == 0, rng.normal(0.40, 0.03, n), rng.normal(0.50, 0.03, n))

    def described_(blur_, detail_, luma=150.0, clipped=0.0):
        q = np.column_stack([np.full(n, luma), np.zeros(n), np.full(n, clipped), blur_, detail_])
        return {
            "features": features.astype(np.float32),
            "logits": np.zeros((n, 7)),
            "quality": q,
            "skin_fraction": np.ones(n),
            "lesion": groups,  # carried along, to see which lesions each step is given
        }

    val = described_(blur, detail)
    mild = {"noise": described_(blur + rng.normal(0, 0.01, n), detail * 1.05)}
    severe = {
        "blur": described_(blur + 0.4, detail * 0.3),
        "dark": described_(blur, detail, luma=30.0),
        "overexposed": described_(blur, detail, clipped=0.9),
    }
    ood = {
        "features": np.tile([0, 0, 1.0, 0], (20, 1)).astype(np.float32),
        "logits": np.zeros((20, 7)),
        "quality": np.tile([150.0, 0, 0, 0.4, 2.0], (20, 1)),
        "skin_fraction": np.full(20, 0.9),
    }

    # every lesion a gate is measured on must be absent from what that gate was fitted on
    fitted_on, leaks, measured = [set()], [], set()
    fit, decisions = operating_point.fit_lesion_gate, gate_fit.decisions

    def recording_fit(base, reference, severe_, **options):
        fitted_on[0] = {lesion for d in [*reference, *severe_.values()] for lesion in d["lesion"]}
        return fit(base, reference, severe_, **options)

    def recording_decisions(gate, described):
        held = set(described.get("lesion", ()))
        leaks.extend(held & fitted_on[0])
        measured.update(held)
        return decisions(gate, described)

    monkeypatch.setattr(operating_point, "fit_lesion_gate", recording_fit)
    monkeypatch.setattr(gate_fit, "decisions", recording_decisions)
    figures = cross_fitted_gates(small_gate(), val, mild, severe, labels, groups, ood=ood, folds=4, seeds=(0, 1))

    assert not leaks
    assert measured == set(groups)  # and every lesion is measured, held out once per seed
    assert list(figures) == list(GATE_VARIANTS)
    for by in figures.values():
        assert set(by) == {"taken", "mild", "caught"}
        assert set(by["taken"]) == {CLASSES[0], CLASSES[1], "all"}
        assert set(by["caught"]) == {"severe_blur", "severe_dark", "severe_overexposed", "out_of_domain"}
        assert by["caught"]["severe_dark"] == 1.0 and by["caught"]["out_of_domain"] == 1.0
    v3, _, v4 = figures.values()
    # one detail floor for all calls the smooth kind blurred far more often than the kind-aware one,
    # and the kind-aware one still catches the blurred photos
    assert v3["taken"][CLASSES[1]] > 0.02
    assert v4["taken"][CLASSES[1]] < v3["taken"][CLASSES[1]] / 2
    assert v4["caught"]["severe_blur"] >= 0.95


def test_referral_rules_are_cross_fitted_on_held_out_lesions_and_the_sum_can_win(monkeypatch):
    from inference.preprocessing import CLASSES
    from training import operating_point
    from training.operating_point import THRESHOLD_RULES, cross_fitted_thresholds, malignant_sum

    rng = np.random.default_rng(4)
    n = 1200  # 600 lesions, two photos each; a third malignant
    lesion = np.arange(n) // 2
    malignant = rng.random(n // 2)[lesion] < 1 / 3
    mel, bcc, akiec, nv = (CLASSES.index(c) for c in ("mel", "bcc", "akiec", "nv"))
    labels = np.where(malignant, np.where(lesion % 2 == 0, mel, bcc), nv)
    probabilities = np.zeros((n, 7))
    # A cancer spreads a moderate mass over the three malignant classes; a naevus puts a smaller mass on
    # one of them. Each cancer's highest class is often below a naevus' one, its sum rarely is.
    mass = np.where(malignant, rng.uniform(0.2, 0.6, n), rng.uniform(0.0, 0.3, n))
    spread = np.where(malignant[:, None], rng.dirichlet([4, 4, 4], n), np.eye(3)[rng.integers(0, 3, n)])
    probabilities[:, [mel, bcc, akiec]] = mass[:, None] * spread
    probabilities[:, nv] = 1 - mass
    groups = np.array([f"lesion-{i}" for i in lesion])
    shifted = {"noise": np.clip(probabilities + rng.normal(0, 0.005, probabilities.shape), 0, 1)}

    summed = malignant_sum(probabilities)
    assert np.allclose(summed[:, mel], mass) and np.allclose(np.delete(summed, mel, axis=1), 0)

    # each fit sees all lesions but one fold's, with the same photos under every shift; those folds
    # do not overlap and cover every lesion
    held_out, fit = [], operating_point.fit_bounded_thresholds

    def recording_fit(probabilities_, labels_, groups_, **options):
        held_out.append(set(groups) - set(groups_))
        assert set(options["shifted"]) == set(shifted)
        assert all(len(array) == len(groups_) for array in options["shifted"].values())
        assert options["lower_bound"] == options["shifted_sensitivity"] == 0.95
        return fit(probabilities_, labels_, groups_, **options)

    monkeypatch.setattr(operating_point, "fit_bounded_thresholds", recording_fit)
    figures = cross_fitted_thresholds(probabilities, labels, groups, shifted, folds=4, seeds=(0,))

    assert len(held_out) == 4 * len(THRESHOLD_RULES)
    for rule in range(len(THRESHOLD_RULES)):
        folds = held_out[rule * 4 : rule * 4 + 4]
        assert all(folds) and set().union(*folds) == set(groups) and sum(map(len, folds)) == len(set(groups))
    assert list(figures) == list(THRESHOLD_RULES)
    served, total = figures["highest malignant class (served)"], figures["sum of the malignant classes"]
    for by in (served, total):
        assert by["malignant_sensitivity"] >= 0.93  # fitted on a lower bound of 0.95, measured held out
    assert total["specificity"] > served["specificity"] + 0.05


def test_cross_fitted_thresholds_measure_each_fold_with_the_fit_that_did_not_see_it(monkeypatch):
    from training import operating_point
    from training.operating_point import Fit, cross_fitted_thresholds, lesion_folds

    rng = np.random.default_rng(2)
    n = 400
    labels = np.tile([0, 1, 4, 5], n // 4)  # akiec, bcc, mel, nv
    groups = np.array([f"lesion-{i // 2}" for i in range(n)])
    probabilities = rng.dirichlet(np.ones(7), n)

    # A fit that saw lesion-0 refers every photo; the one fit that did not, none. Measured on held-out
    # folds, exactly the photos of lesion-0's fold go unreferred; measured in-sample, none would.
    def marking_fit(probabilities_, labels_, groups_, **options):
        return Fit(thresholds={"mel": 0.0 if "lesion-0" in set(groups_) else 2.0})

    monkeypatch.setattr(operating_point, "fit_bounded_thresholds", marking_fit)
    figures = cross_fitted_thresholds(probabilities, labels, groups, {}, folds=4, seeds=(0,))
    fold = lesion_folds(labels, groups, 4, 0)
    unseen = fold == fold[list(groups).index("lesion-0")]
    malignant = labels != 5
    expected = {
        "malignant_sensitivity": 1 - unseen[malignant].mean(),
        "melanoma_sensitivity": 1 - unseen[labels == 4].mean(),
        "specificity": unseen[~malignant].mean(),
    }
    for by in figures.values():
        assert by == pytest.approx(expected)
        assert 0 < by["specificity"] < 1


def test_compare_thresholds_prints_each_shifts_threshold_and_the_rules_held_out(monkeypatch, capsys):
    from training import operating_point

    rng = np.random.default_rng(6)
    n = 600
    lesion = np.arange(n) // 2
    malignant = (lesion % 3) == 0
    labels = np.where(malignant, 4, 5)  # mel or nv
    logits = np.full((n, 7), -4.0)  # mel and nv carry the probability
    logits[:, 4] = np.where(malignant, 1.5, -1.0) + rng.normal(0, 1.0, n)
    logits[:, 5] = 1.0

    from inference.calibration import softmax

    class Calibration:
        probabilities = staticmethod(softmax)

    class Predictor:
        calibration = Calibration()

    sets = {"val": {"logits": logits}}
    mild = {"sharpening": {"logits": logits - np.where(np.arange(7) == 4, 1.0, 0.0)}}
    groups = {"val": [f"lesion-{i}" for i in lesion]}
    monkeypatch.setattr(
        operating_point,
        "described_sets",
        lambda source, **caches: ({}, {}, Predictor(), {}, sets, {"val": labels}, groups, mild),
    )
    figures = operating_point.compare_thresholds(source="runs/candidate")
    out = capsys.readouterr().out
    assert "Validation, candidate's network" in out
    rows = [line for line in out.splitlines() if line.startswith("| none") or line.startswith("| sharpening")]
    assert len(rows) == 2
    # the melanoma logit lower under the shift: it allows a lower threshold than no shift
    (none_threshold, sharpened_threshold) = (float(row.split("|")[3]) for row in rows)
    assert sharpened_threshold < none_threshold
    assert set(figures) == set(operating_point.THRESHOLD_RULES)
    assert all(f"| {name} |" in out for name in figures)


def test_best_threshold_is_the_highest_that_keeps_both_sensitivities():
    from training.operating_point import best_threshold, malignant_sum

    # Four melanomas, four basal cell carcinomas, ten naevi; one probability per photo carries the score.
    mel_scores = [0.9, 0.6, 0.1, 0.05]
    bcc_scores = [0.8, 0.5, 0.4, 0.3]
    nv_scores = [0.7, 0.35, 0.25, 0.15, 0.1, 0.08, 0.04, 0.03, 0.02, 0.01]
    labels = np.array([MEL] * 4 + [BCC] * 4 + [NV] * 10)
    probabilities = np.zeros((len(labels), len(CLASSES)))
    probabilities[:4, MEL] = mel_scores
    probabilities[4:8, BCC] = bcc_scores
    probabilities[8:, MEL] = nv_scores

    # Malignant sensitivity alone would allow 0.3 (6 of 8), but only 2 of 4 melanomas are referred
    # there: melanoma binds at 0.1 (7 of 8 malignant, 3 of 4 melanomas). The naevi at 0.7, 0.35,
    # 0.25, 0.15 and 0.1 (at the threshold itself) are referred.
    found = best_threshold(probabilities, labels, sensitivity=0.75)
    assert found["thresholds"] == pytest.approx({"akiec": 0.1, "bcc": 0.1, "mel": 0.1})
    assert found["malignant_sensitivity"] == pytest.approx(7 / 8)
    assert found["melanoma_sensitivity"] == pytest.approx(3 / 4)
    assert found["specificity"] == pytest.approx(5 / 10)
    # Every malignant photo: the lowest malignant score, where every naevus from 0.05 up is referred.
    everything = best_threshold(probabilities, labels, sensitivity=1.0)
    assert everything["thresholds"]["mel"] == pytest.approx(0.05)
    assert everything["specificity"] == pytest.approx(4 / 10)
    # Read through the sum rule: the melanoma with 0.05 of melanoma and now 0.3 of carcinoma sums to
    # 0.35, where 6 of 8 malignant photos and 3 of 4 melanomas are referred (its highest class alone,
    # 0.3, would bind at 0.3).
    probabilities[3, BCC] = 0.3
    summed = best_threshold(malignant_sum(probabilities), labels, sensitivity=0.75)
    assert summed["thresholds"]["mel"] == pytest.approx(0.35)
    assert summed["melanoma_sensitivity"] == pytest.approx(3 / 4)
    with pytest.raises(ValueError):
        best_threshold(probabilities, labels, sensitivity=96)


def test_best_class_thresholds_beat_one_threshold_where_the_classes_sit_apart():
    from training.operating_point import best_class_thresholds, best_threshold

    # Melanomas score high on melanoma, carcinomas low on carcinoma; three naevi carry some melanoma
    # probability, three some carcinoma probability. One threshold low enough for the carcinomas
    # refers the three naevi with melanoma probability; a threshold per class refers none.
    labels = np.array([MEL] * 4 + [BCC] * 4 + [NV] * 6)
    probabilities = np.zeros((len(labels), len(CLASSES)))
    probabilities[:4, MEL] = [0.9, 0.8, 0.7, 0.6]
    probabilities[4:8, BCC] = [0.2, 0.15, 0.12, 0.1]
    probabilities[8:11, MEL] = [0.5, 0.4, 0.3]
    probabilities[11:, BCC] = [0.05, 0.03, 0.01]
    grid = [0.05, 0.1, 0.6, 0.9]

    single = best_threshold(probabilities, labels, sensitivity=1.0)
    assert single["specificity"] == pytest.approx(3 / 6)
    per_class = best_class_thresholds(probabilities, labels, sensitivity=1.0, grid=grid)
    assert per_class["thresholds"]["mel"] == pytest.approx(0.6)
    assert per_class["thresholds"]["bcc"] == pytest.approx(0.1)
    assert per_class["malignant_sensitivity"] == per_class["melanoma_sensitivity"] == 1.0
    assert per_class["specificity"] == 1.0
    with pytest.raises(ValueError):
        best_class_thresholds(probabilities, labels, sensitivity=1.0, grid=[0.95])


def test_reachable_prints_the_served_thresholds_beside_the_ceiling_on_the_split(monkeypatch, capsys):
    from inference.calibration import softmax
    from training import operating_point

    rng = np.random.default_rng(3)
    n = 400
    labels = np.where(np.arange(n) % 4 == 0, MEL, NV)
    logits = np.full((n, 7), -4.0)
    logits[:, MEL] = np.where(labels == MEL, 1.0, -1.0) + rng.normal(0, 1.0, n)
    logits[:, NV] = 1.0

    class Calibration:
        probabilities = staticmethod(softmax)

    class Predictor:
        calibration = Calibration()

    manifest = {"thresholds": {"mel": 0.01, "bcc": 0.01, "akiec": 0.01}}  # refers nearly everything
    described = (manifest, {}, Predictor(), {}, {"test": {"logits": logits}}, {"test": labels}, {}, {})
    monkeypatch.setattr(operating_point, "described_sets", lambda source, **caches: described)
    figures = operating_point.reachable(source="runs/candidate", split="test", sensitivity=0.9)
    out = capsys.readouterr().out
    served = figures["served thresholds (fitted on validation)"]
    ceiling = figures["highest malignant class (served), best threshold chosen on test"]
    assert served["malignant_sensitivity"] == 1.0
    assert ceiling["malignant_sensitivity"] >= 0.9 and ceiling["melanoma_sensitivity"] >= 0.9
    assert ceiling["thresholds"]["mel"] > served["thresholds"]["mel"]
    assert ceiling["specificity"] > served["specificity"]
    assert "Test split, candidate" in out
    assert all(f"| {name} |" in out for name in figures)
