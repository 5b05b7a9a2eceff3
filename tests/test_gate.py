"""The photo gate without Django: quality measures, decisions, and the gate inside the model artifact."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageFilter

from inference import gate as gate_module
from inference import quality
from inference.artifact import ArtifactError, load_artifact, sha256_file

RNG = np.random.default_rng(11)


def textured(size: int = 224) -> np.ndarray:
    """A sharp, mid-bright image with detail at every scale: smoothed noise plus fine noise."""
    coarse = np.asarray(Image.fromarray(RNG.integers(60, 200, (28, 28, 3), dtype=np.uint8)).resize((size, size)))
    fine = RNG.normal(0, 18, (size, size, 3))
    return np.clip(coarse + fine, 0, 255).astype(np.uint8)


def blurred(pixels: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius)))


# --- Quality measures on synthetic images with known blur and exposure --------------------------
def test_blur_measure_rises_with_known_blur_and_detail_falls():
    image = textured()
    measures = [quality.measure(blurred(image, radius)) for radius in (0, 1, 2, 4)]
    blur = [m.blur for m in measures]
    assert blur == sorted(blur), blur
    assert blur[0] < 0.3 and blur[-1] > 0.7
    detail = [quality.measure(blurred(image, radius)).detail for radius in (0, 1, 2, 4, 8, 16, 32)]
    assert detail == sorted(detail, reverse=True), detail
    assert detail[-1] < 0.1 * detail[0]


def test_a_photo_blurred_beyond_recognition_is_turned_back_as_blurred():
    """Past a point the blur measure sees 8-bit quantisation steps as detail; the detail measure does not."""
    gate = small_gate(detail_min=1.0)
    skin = np.clip(np.full((224, 224, 3), (200, 150, 120)) + RNG.normal(0, 25, (224, 224, 3)), 0, 255).astype(np.uint8)
    for radius in (4, 8, 16, 32):
        assert decide(gate, blurred(skin, radius), [4.5, 0, 0, 0]).reason == "blurred", radius


def test_blur_measure_does_not_call_a_smooth_but_sharp_edge_blurred():
    """A sharp step between two flat areas has little texture but no blur."""
    step = np.full((224, 224, 3), 90, np.uint8)
    step[:, 112:] = 170
    assert quality.measure(step).blur < quality.measure(blurred(step, 4)).blur
    assert quality.measure(step).blur < 0.3


def test_exposure_measures_follow_known_gain():
    image = textured()
    dark = (image * 0.1).astype(np.uint8)
    bright = np.clip(image.astype(np.float32) * 3, 0, 255).astype(np.uint8)
    grey = np.full((224, 224, 3), 128, np.uint8)

    assert quality.measure(grey).luma_mean == pytest.approx(128, abs=0.5)
    assert quality.measure(grey).clipped_fraction == 0 and quality.measure(grey).dark_fraction == 0
    assert quality.measure(dark).luma_mean == pytest.approx(quality.measure(image).luma_mean * 0.1, abs=1)
    assert quality.measure(dark).dark_fraction > 0.9
    assert quality.measure(bright).clipped_fraction > 0.9
    assert quality.measure(np.full((224, 224, 3), 255, np.uint8)).clipped_fraction == 1.0


def test_skin_fraction_tells_skin_colours_from_others():
    skin = np.full((50, 50, 3), (224, 172, 140), np.uint8)
    assert gate_module.skin_fraction(skin) == 1.0
    assert gate_module.skin_fraction(np.full((50, 50, 3), (40, 60, 200), np.uint8)) == 0.0
    assert gate_module.skin_fraction(np.full((50, 50, 3), (40, 160, 60), np.uint8)) == 0.0


# --- Decisions --------------------------------------------------------------------------------
def small_gate(**overrides) -> gate_module.Gate:
    """Two classes in four dimensions, identity covariance: distances (of unit-length features) are easy."""
    stats = {
        "class_means": np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32),
        "precision": np.eye(4, dtype=np.float32),
        "score_center": np.array([0.0, 0.0]),
        "score_scale": np.array([1.0, 1.0e9]),  # energy switched off: the score is the distance
    }
    thresholds = {
        "ood_score": 2.0,
        "luma_mean_min": 40,
        "clipped_fraction_max": 0.5,
        "blur_max": 0.7,
        "detail_min": 1.0,
        **overrides,
    }
    return gate_module.Gate(stats=stats, thresholds=thresholds)


def decide(gate, pixels, features):
    return gate.decide(pixels=pixels, features=np.asarray(features, np.float32), logits=np.zeros(7))


def test_decision_reasons_and_messages():
    gate = small_gate()
    skin = np.clip(np.full((224, 224, 3), (200, 150, 120)) + RNG.normal(0, 20, (224, 224, 3)), 0, 255).astype(np.uint8)
    assert decide(gate, skin, [4.5, 0, 0, 0]).reason == "ok"
    assert decide(gate, skin, [4.5, 0, 0, 0]).score == pytest.approx(0.0, abs=1e-5)  # scaled to unit length
    assert decide(gate, skin, [3, 4, 0, 0]).score == pytest.approx(0.4, abs=1e-5)  # (0.6, 0.8) to (0, 1)
    far = [-1, -1, 0, 0]  # 2 + sqrt(2) from both class means
    assert decide(gate, skin, far).reason == "not_a_lesion"
    blue = np.clip(np.full((224, 224, 3), (40, 60, 200)) + RNG.normal(0, 20, (224, 224, 3)), 0, 255).astype(np.uint8)
    assert decide(gate, blue, far).reason == "not_skin"
    assert decide(gate, (skin * 0.1).astype(np.uint8), [4.5, 0, 0, 0]).reason == "too_dark"
    assert decide(gate, np.full_like(skin, 255), [4.5, 0, 0, 0]).reason == "overexposed"
    assert decide(gate, blurred(skin, 8), [4.5, 0, 0, 0]).reason == "blurred"
    for reason in gate_module.REASONS:
        assert "take it again" in gate_module.MESSAGES[reason]
    assert gate_module.Decision("blurred", 0.0).message.startswith("This photo looks out of focus")


def test_a_flat_or_saturated_blue_card_is_turned_back_as_not_skin_not_as_blurred_or_dark():
    gate = small_gate(luma_mean_min=98)
    far = [-1, -1, 0, 0]
    flat_blue = np.full((224, 224, 3), (40, 120, 220), np.uint8)  # no detail at all: "blurred" before
    deep_blue = np.full((224, 224, 3), (30, 90, 200), np.uint8)  # luminance 85: "too dark" before
    for card in (flat_blue, deep_blue):
        decision = decide(gate, card, far)
        assert decision.reason == "not_skin", decision.measures
        assert decision.message.startswith("This photo does not look like skin")
    assert gate_module.colourfulness(flat_blue) > gate_module.COLOURFUL_MIN


def test_dark_washed_out_and_blurred_photos_keep_their_quality_reason_when_out_of_domain():
    """Grey, black and white carry no colour to judge by; blurred skin is still skin."""
    gate = small_gate(luma_mean_min=98)
    far = [-1, -1, 0, 0]
    skin = np.clip(np.full((224, 224, 3), (200, 150, 120)) + RNG.normal(0, 20, (224, 224, 3)), 0, 255).astype(np.uint8)
    assert decide(gate, (skin * 0.1).astype(np.uint8), far).reason == "too_dark"
    assert decide(gate, np.full_like(skin, 255), far).reason == "overexposed"
    assert decide(gate, np.full_like(skin, 128), far).reason == "blurred"
    assert decide(gate, blurred(skin, 8), far).reason == "blurred"


def test_the_served_model_turns_back_a_flat_blue_image_as_not_skin(model_dir):
    from inference.predictor import Predictor

    predictor = Predictor(load_artifact(model_dir))
    for colour in ((40, 120, 220), (30, 90, 200), (60, 140, 230)):
        scores = predictor.predict_pixels(np.full((224, 224, 3), colour, np.uint8))
        assert scores.gate.reason == "not_skin", (colour, scores.gate.measures)


def test_gate_score_matches_the_batch_formula():
    gate = small_gate(**{"ood_score": 1.0})
    gate.stats["score_scale"] = np.array([2.0, 3.0])
    features = RNG.normal(0, 2, (5, 4)).astype(np.float32)
    logits = RNG.normal(0, 2, (5, 7))
    batch = gate_module.ood_score(features, logits, gate.stats)
    single = [gate.score(f, z) for f, z in zip(features, logits, strict=True)]
    assert np.allclose(batch, single, atol=1e-4)


def test_gate_with_missing_statistics_or_thresholds_is_an_error():
    with pytest.raises(gate_module.GateError, match="precision"):
        gate_module.Gate(stats={"class_means": np.zeros((2, 3))}, thresholds={})
    stats = small_gate().stats
    with pytest.raises(gate_module.GateError, match="blur_max"):
        gate_module.Gate(stats=stats, thresholds={"ood_score": 1, "luma_mean_min": 1, "clipped_fraction_max": 1})


# --- Fitting ----------------------------------------------------------------------------------
def described(features, logits, quality_rows=None):
    n = len(features)
    q = quality_rows if quality_rows is not None else np.tile([150.0, 0.0, 0.0, 0.4, 2.0], (n, 1))
    return {"features": features, "logits": logits, "quality": np.asarray(q), "skin_fraction": np.ones(n)}


def test_fitted_thresholds_turn_back_the_chosen_share_of_validation_photos():
    from training.gate import fit_gate

    labels = RNG.integers(0, 7, 2000)
    centres = RNG.normal(0, 3, (7, 16))
    train = described(centres[labels] + RNG.normal(0, 1, (2000, 16)), RNG.normal(0, 1, (2000, 7)))
    val_labels = RNG.integers(0, 7, 1000)
    val_quality = np.column_stack(
        [
            RNG.uniform(100, 200, 1000),
            np.zeros(1000),
            RNG.uniform(0, 0.3, 1000),
            RNG.uniform(0.2, 0.6, 1000),
            RNG.uniform(1, 4, 1000),
        ]
    )
    val = described(centres[val_labels] + RNG.normal(0, 1, (1000, 16)), RNG.normal(0, 1, (1000, 7)), val_quality)
    gate, section = fit_gate(
        train=train, train_labels=labels, val=val, val_severe={}, total_rate=0.02, quality_rate=0.0
    )

    assert section["validation"]["lesions_turned_back"] == pytest.approx(0.02, abs=0.003)
    assert section["thresholds"]["luma_mean_min"] == pytest.approx(val_quality[:, 0].min())
    far = described(RNG.normal(0, 1, (50, 16)) + 40, RNG.normal(0, 1, (50, 7)))
    from training.gate import turned_back_share

    assert turned_back_share(gate, far) == 1.0


# --- The gate inside the model artifact ----------------------------------------------------------
@pytest.fixture
def artifact_copy(tmp_path, model_dir):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def rewrite_manifest(folder, change) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_gate_thresholds_and_statistics_round_trip_through_the_artifact(artifact_copy):
    from inference.predictor import Predictor
    from training.gate import write_into

    gate = small_gate()
    stats = {
        "class_means": RNG.normal(0, 1, (7, 1280)).astype(np.float32),
        "precision": np.eye(1280, dtype=np.float32) * 0.5,
        "score_center": np.array([3.0, -2.0]),
        "score_scale": np.array([7.0, 1.5]),
    }
    thresholds = {**gate.thresholds, "ood_score": 4.25, "blur_max": 0.66, "skin_fraction_min": 0.3}
    fitted = gate_module.Gate(stats=stats, thresholds=thresholds)
    section = write_into(artifact_copy, fitted, {"file": "gate.npz", "thresholds": thresholds})

    def install(manifest):
        manifest["gate"] = section
        manifest["files"]["gate.npz"] = sha256_file(artifact_copy / "gate.npz")

    rewrite_manifest(artifact_copy, install)
    artifact = load_artifact(artifact_copy)
    assert artifact.gate_thresholds == thresholds
    served = Predictor(artifact).gate
    assert served.thresholds == thresholds
    for name, value in stats.items():
        assert np.array_equal(served.stats[name], value)
    features, logits = RNG.normal(0, 1, 1280), RNG.normal(0, 1, 7)
    assert served.score(features, logits) == pytest.approx(fitted.score(features, logits))


def test_the_shipped_artifact_serves_a_gate(model_dir):
    from inference.predictor import Predictor

    predictor = Predictor(load_artifact(model_dir))
    assert predictor.gate is not None
    assert set(predictor.gate.thresholds) >= {"ood_score", "luma_mean_min", "clipped_fraction_max", "blur_max"}
    scores = predictor.predict_pixels(np.full((224, 224, 3), 255, np.uint8))
    assert scores.gate.reason == "overexposed" and scores.pooled_features.shape == (1280,)


def test_an_artifact_without_gate_statistics_is_refused(artifact_copy):
    rewrite_manifest(artifact_copy, lambda manifest: manifest.pop("gate"))
    with pytest.raises(ArtifactError, match="no photo gate"):
        load_artifact(artifact_copy)


def test_an_artifact_of_format_version_1_is_refused_with_the_command_that_gates_it(artifact_copy):
    rewrite_manifest(artifact_copy, lambda manifest: manifest.update(format_version=1))
    with pytest.raises(ArtifactError, match="no photo gate.*training.gate build"):
        load_artifact(artifact_copy)


def test_an_artifact_whose_gate_file_was_altered_is_refused(artifact_copy):
    with (artifact_copy / "gate.npz").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match="gate.npz does not match"):
        load_artifact(artifact_copy)


# --- The case's risk ------------------------------------------------------------------------------
def test_a_photo_that_is_not_skin_never_counts_toward_the_risk():
    from inference.risk import HIGH, LOW, ImageResult, case_risk

    thresholds = {"mel": 0.3, "bcc": 0.3, "akiec": 0.12}
    cancer_like = {"akiec": 0.9, "bcc": 0.02, "bkl": 0.02, "df": 0.02, "mel": 0.02, "nv": 0.01, "vasc": 0.01}
    benign = {"akiec": 0.01, "bcc": 0.01, "bkl": 0.02, "df": 0.01, "mel": 0.01, "nv": 0.93, "vasc": 0.01}

    only_rejected = case_risk([ImageResult(1, cancer_like, turned_back="not_skin")], thresholds=thresholds)
    assert only_rejected.level == "" and only_rejected.flagged == ()
    assert "not read by the model: it does not look like skin" in only_rejected.summary
    assert "add a new photo" in only_rejected.summary

    mixed = case_risk(
        [ImageResult(1, benign), ImageResult(2, cancer_like, turned_back="not_skin")], thresholds=thresholds
    )
    assert mixed.level == LOW and mixed.flagged == ()
    assert "Photo 2 was not read by the model: it does not look like skin" in mixed.summary
    assert case_risk([ImageResult(1, cancer_like)], thresholds=thresholds).level == HIGH


@pytest.mark.parametrize("why", ["not_a_lesion", "blurred", "too_dark", "overexposed"])
def test_a_turned_back_photo_of_skin_that_looks_like_a_cancer_still_refers_the_case(why):
    from inference.risk import HIGH, ImageResult, case_risk

    thresholds = {"mel": 0.3, "bcc": 0.3, "akiec": 0.12}
    bcc_like = {"akiec": 0.02, "bcc": 0.45, "bkl": 0.1, "df": 0.02, "mel": 0.02, "nv": 0.38, "vasc": 0.01}
    benign = {"akiec": 0.01, "bcc": 0.01, "bkl": 0.02, "df": 0.01, "mel": 0.01, "nv": 0.93, "vasc": 0.01}

    alone = case_risk([ImageResult(1, bcc_like, turned_back=why)], thresholds=thresholds)
    assert alone.level == HIGH and alone.flagged == ((1, "bcc"),)
    headline = alone.summary.split(". ")[0]  # what the referral gives as its reason
    assert headline.startswith("High risk: the model could not read this photo reliably")
    assert "basal cell carcinoma probability 45%" in headline
    assert alone.facts[0]["code"] == "unreliable_high"

    beside_a_benign_photo = case_risk(
        [ImageResult(1, benign), ImageResult(2, bcc_like, turned_back=why)], thresholds=thresholds
    )
    assert beside_a_benign_photo.level == HIGH
    assert "could not read photo 2 reliably" in beside_a_benign_photo.summary
    # a turned-back photo below every threshold still gives no result and refers nothing
    low = case_risk([ImageResult(1, benign, turned_back=why)], thresholds=thresholds)
    assert low.level == "" and low.flagged == ()


def test_per_class_thresholds_judge_a_photo_against_its_nearest_class():
    # class 0's photos spread further than class 1's: one threshold would turn back class 0 alone
    gate = small_gate(ood_score_by_class=[1.5, 0.5], energy_weight=0.0)
    skin = np.clip(np.full((224, 224, 3), (200, 150, 120)) + RNG.normal(0, 20, (224, 224, 3)), 0, 255).astype(np.uint8)
    near_0 = [0.8, 0.0, 0.6, 0.0]  # distance 0.4 ... to class 0 after unit length: (0.8-1)^2 + 0.36 = 0.4
    near_1 = [0.0, 0.6, 0.8, 0.0]  # distance (0.6-1)^2 + 0.64 = 0.8 to class 1
    assert decide(gate, skin, near_0).nearest == 0 and decide(gate, skin, near_0).reason == "ok"
    assert decide(gate, skin, near_1).nearest == 1 and decide(gate, skin, near_1).reason == "not_a_lesion"
    with pytest.raises(gate_module.GateError):
        small_gate(ood_score_by_class=[1.0, 2.0, 3.0])


def test_fitting_a_threshold_per_class_mean_turns_back_each_kind_alike():
    from training.gate import fit_class_thresholds

    gate = small_gate()
    rng = np.random.default_rng(3)
    # photos near class 0 spread widely around it, photos near class 1 hug it
    near_0 = np.column_stack([np.ones(400), np.zeros(400), rng.normal(0, 0.6, 400), np.zeros(400)])
    near_1 = np.column_stack([np.zeros(400), np.ones(400), rng.normal(0, 0.15, 400), np.zeros(400)])
    described = {"features": np.vstack([near_0, near_1]).astype(np.float32), "logits": np.zeros((800, 7))}
    per_class, extra = fit_class_thresholds(gate, [described], rate=0.02, energy_weight=0.0)
    assert extra["reference_photos_by_class_mean"] == [400, 400]
    assert per_class.class_thresholds[0] > per_class.class_thresholds[1]
    scored = [per_class.scored(f, z) for f, z in zip(described["features"], described["logits"], strict=False)]
    back = np.array([score > per_class.ood_threshold(nearest) for score, nearest in scored])
    assert back[:400].mean() <= 0.03 and back[400:].mean() <= 0.03
    # one threshold for all at the same overall rate would turn back the spread-out kind far more
    scores = np.array([score for score, _ in scored])
    single = scores > np.quantile(scores, 0.98)
    assert single[:400].mean() > 3 * single[400:].mean()


def test_a_kind_with_few_reference_photos_is_not_held_to_a_threshold_from_its_few_photos():
    from training.gate import fit_class_thresholds

    dims = 40  # distances over many feature dimensions, as in the network's 1280
    means = np.zeros((2, dims), np.float32)
    means[0, 0] = means[1, 1] = 1.0
    stats = {
        "class_means": means,
        "precision": np.eye(dims, dtype=np.float32),
        "score_center": np.array([0.0, 0.0]),
        "score_scale": np.array([1.0, 1.0e9]),
    }
    gate = gate_module.Gate(
        stats=stats, thresholds={"ood_score": 2.0, "luma_mean_min": 40, "clipped_fraction_max": 0.5, "blur_max": 0.7}
    )
    rng = np.random.default_rng(5)

    def photos(kind, n):
        return (means[kind] + rng.normal(0, 0.08, (n, dims))).astype(np.float32)

    # many photos near class 0; only 12 near class 1, which spreads the same way. New photos of
    # the small kind, judged by thresholds fitted on 20 different draws of its 12:
    many = photos(0, 3000)
    new = photos(1, 3000)
    new_scores = np.array([gate.scored(f, np.zeros(7))[0] for f in new])
    own_rates, pooled_rates = [], []
    for _ in range(20):
        reference = {"features": np.vstack([many, photos(1, 12)]), "logits": np.zeros((3012, 7))}
        own, _ = fit_class_thresholds(gate, [reference], rate=0.005, energy_weight=0.0, pooled_tail=False)
        pooled, _ = fit_class_thresholds(gate, [reference], rate=0.005, energy_weight=0.0)
        assert (pooled.class_thresholds >= own.class_thresholds).all()  # never tighter than a kind's own photos show
        own_rates.append((new_scores > own.class_thresholds[1]).mean())
        pooled_rates.append((new_scores > pooled.class_thresholds[1]).mean())

    # its own 99.5% "quantile" of 12 photos is about their largest, which turns back several in a
    # hundred new ones; read from the shared tail it turns back about the chosen share
    assert np.mean(own_rates) > 0.04
    assert np.mean(pooled_rates) < 0.03 and np.mean(pooled_rates) < np.mean(own_rates) / 3


def test_a_kind_of_lesion_smooth_by_nature_is_not_called_blurred_while_a_blurred_photo_still_is():
    from training.gate import class_quality_thresholds

    gate = small_gate(detail_min=1.0, blur_max=0.6)
    rng = np.random.default_rng(6)
    n = 300
    # quality rows: luma_mean, dark_fraction, clipped_fraction, blur, detail
    exposure = [np.full(n, 150.0), np.zeros(n), np.zeros(n)]
    textured_kind = np.column_stack([*exposure, rng.normal(0.40, 0.03, n), rng.normal(2.4, 0.4, n)])
    smooth_kind = np.column_stack([*exposure, rng.normal(0.50, 0.03, n), rng.normal(1.2, 0.15, n)])
    features = np.vstack([np.tile([1, 0, 0.1, 0], (n, 1)), np.tile([0, 1, 0.1, 0], (n, 1))]).astype(np.float32)
    reference = described(features, np.zeros((2 * n, 7)), np.vstack([textured_kind, smooth_kind]))

    fitted, extra = class_quality_thresholds(gate, [reference])

    assert "quality_by_class" in extra
    assert fitted.detail_min(0) == pytest.approx(1.0) and fitted.blur_max(0) == pytest.approx(0.6)  # the usual kind
    assert fitted.detail_min(1) < 0.8 and fitted.blur_max(1) > 0.6  # the smooth kind, by its median

    def reason(features_, blur, detail):
        values = {"luma_mean": 150.0, "dark_fraction": 0.0, "clipped_fraction": 0.0, "blur": blur, "detail": detail}
        for fitted_gate in (gate, fitted):
            yield fitted_gate.decide_arrays(
                quality_values=values, features=np.asarray(features_, np.float32), logits=np.zeros(7), skin_fraction=1.0
            ).reason

    # a sharp photo of the smooth kind: the single floor calls it blurred, its own does not
    assert list(reason([0, 1, 0.1, 0], 0.55, 0.9)) == ["blurred", "ok"]
    # a blurred photo is blurred whichever kind it resembles
    assert list(reason([0, 1, 0.1, 0], 0.9, 0.3)) == ["blurred", "blurred"]
    assert list(reason([1, 0, 0.1, 0], 0.55, 0.9)) == ["blurred", "blurred"]
    # the per-class thresholds travel with the manifest's thresholds and come back the same
    again = gate_module.Gate(stats=fitted.stats, thresholds=fitted.all_thresholds())
    assert again.detail_min(1) == fitted.detail_min(1) and again.blur_max(1) == fitted.blur_max(1)
    with pytest.raises(gate_module.GateError):
        small_gate(detail_min_by_class=[1.0, 0.5, 0.2])
