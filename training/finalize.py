"""Turn a finished training run into the shipped artifact: calibrate, set thresholds, report, export.

    python -m training.view_logits --run-dir runs/mobilenet_v2 --cache-dir runs/cache   # for --views
    python -m training.finalize --run-dir runs/mobilenet_v2 \\
        --baseline runs/lenet5 --baseline runs/alexnet \\
        --model-version ham10000-mobilenetv2-v2 --views 8 --make-default

Everything is chosen on the validation split; the test split is only measured. The
calibration corrects the prior shift of the run's class weights, then fits a scale and a
bias per class on the validation split; the thresholds are fitted on the calibrated
validation probabilities. A version that already exists is never overwritten.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from inference.artifact import ARTIFACTS_DIR, DEFAULT_FILE
from inference.calibration import balanced_index
from inference.predictor import default_threads, softmax
from inference.preprocessing import CLASSES
from training import metrics as metrics_module
from training.calibration import fit_temperature, fit_thresholds, fit_vector_scaling, flagged, log_prior_shift
from training.data import DEFAULT_DATA_DIR, read_metadata
from training.gate import fit_into as fit_gate_into
from training.report import write_report

ARCH_LABEL = {"mobilenet_v2": "MobileNetV2", "lenet5": "LeNet-5", "alexnet": "AlexNet"}


def training_prevalence(run_dir: Path) -> np.ndarray:
    """The share of each class among the run's training images (from its split.csv)."""
    counts = np.zeros(len(CLASSES))
    with (run_dir / "split.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "train":
                counts[CLASSES.index(row["dx"])] += 1
    return counts / counts.sum()


def split_lesions(run_dir: Path, data_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Lesion id and label of each image of a split, in the order of its logits (the metadata's order)."""
    with (run_dir / "split.csv").open(newline="") as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    records = [r for r in read_metadata(data_dir) if rows.get(r.image_id, {}).get("split") == name]
    return np.array([rows[r.image_id]["lesion_id"] for r in records]), np.array([r.label for r in records], dtype=int)


def test_intervals(run_dir: Path, data_dir: Path, results: dict) -> dict[str, list[float]]:
    """95% bootstrap intervals of the test figures, resampling the test split's lesions."""
    probabilities, labels = results["test_probabilities"], results["test_labels"]
    groups, their_labels = split_lesions(run_dir, data_dir, "test")
    if len(groups) != len(labels) or not np.array_equal(their_labels, labels):
        raise SystemExit(
            f"{run_dir}/split.csv and {data_dir}'s metadata do not give the test logits' images in their order; "
            "the intervals need the lesion of each image"
        )
    return metrics_module.bootstrap_intervals(
        labels,
        balanced_index(probabilities, results["prevalence"]),
        flagged(probabilities, results["thresholds"]),
        groups,
    )


def split_logits(run_dir: Path, name: str, views: int) -> np.ndarray:
    """The split's logits as the worker computes them: the mean over the first ``views`` views."""
    if views == 1 and (run_dir / f"logits-{name}.npy").exists():
        return np.load(run_dir / f"logits-{name}.npy")
    per_view = run_dir / f"view-logits-{name}.npy"
    if not per_view.exists():
        raise SystemExit(f"{per_view} is missing: run python -m training.view_logits --run-dir {run_dir} first")
    return np.load(per_view)[:, :views].mean(axis=1)


def calibrated_results(
    run_dir: Path, target_sensitivity: float, views: int = 1, melanoma_target: float | None = None
) -> dict:
    """Calibration and thresholds from the validation logits, metrics on both splits."""
    run = json.loads((run_dir / "run.json").read_text())
    val_logits, val_labels = split_logits(run_dir, "val", views), np.load(run_dir / "labels-val.npy")
    test_logits, test_labels = split_logits(run_dir, "test", views), np.load(run_dir / "labels-test.npy")
    prevalence = training_prevalence(run_dir)
    calibration = fit_vector_scaling(val_logits, val_labels, log_prior_shift(run["class_weights"]))
    val_probabilities = calibration.probabilities(val_logits)
    thresholds = fit_thresholds(val_probabilities, val_labels, target_sensitivity, melanoma_target)
    test_probabilities = calibration.probabilities(test_logits)
    temperature = fit_temperature(val_logits, val_labels)  # the format-1 calibration, for comparison
    return {
        "calibration": calibration,
        "prevalence": prevalence,
        "views": views,
        "temperature": temperature,
        "thresholds": thresholds,
        "val": metrics_module.evaluate(val_probabilities, val_labels, thresholds, prevalence=prevalence),
        "test": metrics_module.evaluate(test_probabilities, test_labels, thresholds, prevalence=prevalence),
        "test_probabilities": test_probabilities,
        "test_labels": test_labels,
        "test_uncalibrated_ece": metrics_module.expected_calibration_error(softmax(test_logits), test_labels)["ece"],
        "test_temperature_only": metrics_module.classwise_calibration(softmax(test_logits, temperature), test_labels),
    }


def keras_ms_per_image(model, repeats: int = 30) -> float:
    """Median time of one single-image forward pass (tf.function, CPU)."""
    import tensorflow as tf

    size = model.input_shape[1]
    forward = tf.function(lambda x: model(x, training=False))
    x = tf.random.uniform((1, size, size, 3), 0, 255)
    for _ in range(3):
        forward(x)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        forward(x).numpy()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def comparison_row(run_dir: Path, results: dict) -> dict:
    import keras

    run = json.loads((run_dir / "run.json").read_text())
    model = keras.models.load_model(run_dir / "best.keras", compile=False)
    headline = metrics_module.summary(results["test"])
    label = ARCH_LABEL.get(run["arch"], run["arch"])
    if run.get("ensemble_of"):
        label = f"{label} x{len(run['ensemble_of'])} (ensemble)"
    return {
        "model": label,
        "input": f"{run['input_size']}x{run['input_size']}",
        "parameters": int(model.count_params()),
        "file_mb": model.count_params() * 4 / 1e6,  # float32 weights, without optimiser state
        "ms_per_image": keras_ms_per_image(model),
        "train_minutes": round(run["train_seconds"] / 60, 1),
        **{
            key: headline[key]
            for key in (
                "accuracy",
                "balanced_accuracy",
                "macro_f1",
                "melanoma_recall",
                "malignant_sensitivity",
                "malignant_specificity",
                "ece",
            )
        },
    }


def litert_ms_per_image(keras_model, repeats: int = 200) -> float:
    """Median time of one LiteRT interpreter call on the converted model, as the worker runs it."""
    from ai_edge_litert.interpreter import Interpreter

    from training.export import convert_to_litert

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tflite"
        convert_to_litert(keras_model, path)
        runner = Interpreter(model_path=str(path), num_threads=default_threads()).get_signature_runner()
        size = keras_model.input_shape[1]
        pixels = np.random.default_rng(0).integers(0, 256, (1, size, size, 3)).astype(np.float32)
        for _ in range(5):
            runner(pixels=pixels)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            runner(pixels=pixels)
            times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


AUGMENTATION = {
    "standard": (
        "horizontal and vertical flips, rotation up to 30 degrees, zoom 20%, translation 10%, brightness, "
        "contrast, saturation and per-channel colour gain"
    ),
    "strong": (
        "any orientation, anisotropic crops, rotation, stronger colour casts and hair-like occlusions on half "
        "the photos"
    ),
    "capture": (
        "the standard flips, rotation, zoom, translation and colour jitter, then a phone's sharpening on half "
        "the photos (unsharp mask, amount 0.3 to 2) or a slight softening on some of the others, and sensor "
        "noise (sd 0.5 to 6 grey levels) on half of them, drawn on its own"
    ),
}


def recipe(run: dict) -> str:
    """How one network was trained, from what its ``run.json`` records."""
    schedule = run.get("schedule", "halved on plateaus")
    if run.get("init_from"):
        start = f"Continued from {run['init_from']}: the network from block {run['fine_tune_from_block']} up"
    else:
        start = (
            f"From ImageNet weights: the head first ({run['head_epochs']} epochs, base frozen, Adam 1e-3), then "
            f"the whole network from block {run['fine_tune_from_block']} up"
        )
    sampling = (
        "every class drawn equally often, loss unweighted"
        if run.get("sampling") == "class-balanced"
        else (
            f"balanced class weights (n / (7 n_c)) raised to the power {run.get('class_weight_power', 1.0):g}, "
            f"malignant classes a further {run['malignant_boost']:g}x"
        )
    )
    text = (
        f"{start} (Adam {run['learning_rate']:g}, {run['epochs_max']} epochs at most, learning rate "
        f"{schedule}, best validation-loss checkpoint kept; seed {run['seed']}); {sampling}; augmentation: "
        f"{AUGMENTATION[run.get('augmentation', 'standard')]}; {run['train_seconds'] / 60:.0f} minutes."
    )
    if run.get("continued_from"):
        text += f" It continued {run['continued_from']}."
    return text


def describe(run: dict, results: dict, target: float, baselines: list[dict]) -> dict:
    weights = ", ".join(f"{k} {v:.2f}" for k, v in run["class_weights"].items())
    val = metrics_module.summary(results["val"])
    members = run.get("ensemble_of") or []
    if members:
        network = (
            f"An ensemble of {len(members)} MobileNetV2 networks (alpha 1.0, ImageNet weights), each fine-tuned "
            f"on HAM10000 at {run['input_size']}x{run['input_size']}; the served logits are the mean of theirs, "
            "computed by one joined network (training.ensemble)"
        )
        training = " ".join(f"Network {n}: {recipe(member)}" for n, member in enumerate(members, start=1))
        imbalance = (
            "Class weights make every diagnosis count in the loss (what balanced accuracy measures), the "
            "malignant classes more; each network's are in its recipe above. The prior correction of the "
            f"mean logits uses the geometric mean of the networks' weights: {weights}."
        )
    else:
        network = (
            f"MobileNetV2 (alpha 1.0, ImageNet weights) fine-tuned on HAM10000 at {run['input_size']}x"
            f"{run['input_size']}"
        )
        training = recipe(run)
        imbalance = (
            "Balanced class weights (n / (7 n_c)) so every diagnosis counts equally in the loss, which "
            "is what balanced accuracy measures; the malignant classes (mel, bcc, akiec) are weighted "
            f"a further {run['malignant_boost']}x because a missed malignancy costs more than a "
            f"false alarm. Weights: {weights}."
        )
    return {
        "evaluated_on": "the lesion-grouped test split, never used for any choice",
        "description": (
            f"{network}. Split 80/10/10 by lesion_id, stratified by diagnosis (seed {run['seed']}): "
            f"{run['split_sizes']['train']:,} training, {run['split_sizes']['val']:,} validation and "
            f"{run['split_sizes']['test']:,} test images. Training took {run['train_seconds'] / 60:.0f} minutes "
            "in all on a 2-core CPU."
        ),
        "sections": {
            "Training": (
                training + " BatchNorm layers stay in inference mode throughout (the ImageNet weights have "
                "BatchNorm folded in)."
            ),
            "Class imbalance": imbalance,
            "Calibration": (
                "Class-wise: the logits are first corrected for the prior shift of the class weights "
                "(minus log w per class), then a scale and a bias per class are fitted on the validation "
                "split by minimising its log loss (vector scaling, lightly regularised towards one "
                "temperature). Test class-wise ECE (mean of the seven one-vs-rest ECEs): "
                f"{results['test']['classwise_calibration']['ece']:.3f}, against "
                f"{results['test_temperature_only']['ece']:.3f} with the temperature alone "
                f"(T = {results['temperature']:.3f}); largest gap between a class' mean probability and "
                f"its prevalence {results['test']['classwise_calibration']['largest_prior_gap']:.3f}, against "
                f"{results['test_temperature_only']['largest_prior_gap']:.3f}. Top-label ECE "
                f"{results['test_uncalibrated_ece']:.3f} uncalibrated, "
                f"{results['test']['calibration']['ece']:.3f} calibrated."
            ),
            "Two answers": (
                "`top_class` is the most likely class (the argmax of the calibrated probabilities); "
                "`balanced_class` is the class the photo resembles most relative to how common it is "
                "(the argmax of probability divided by the training prevalence), the decision that "
                "balanced accuracy and macro F1 score. Referral uses neither: it is the thresholds below."
            ),
            "Test-time augmentation": (
                f"The served logits are the mean over {results['views']} view(s) of the photo "
                "(identity, flips, half and quarter turns; inference.predictor.view), chosen on the "
                "validation split; the heatmap is averaged over the same views turned back."
            ),
            "Triage thresholds": (
                "A case is flagged for a specialist when any of mel, bcc or akiec reaches its threshold: "
                + ", ".join(f"{k} {v:.3f}" for k, v in results["thresholds"].items())
                + f". Chosen on the validation split to flag at least {target:.0%} of malignant images "
                f"there (validation: sensitivity {val['malignant_sensitivity']}, specificity "
                f"{val['malignant_specificity']})."
            ),
            "Validation split": (
                f"balanced accuracy {val['balanced_accuracy']}, macro F1 {val['macro_f1']}, melanoma recall "
                f"{val['melanoma_recall']}, ECE {val['ece']}, class-wise ECE {val['classwise_ece']} (the calibration "
                "was fitted on this split, so this is optimistic)."
            ),
            "Limits": (
                "HAM10000 images are dermatoscopic and downscaled to 200x150; phone photographs taken "
                "without a dermatoscope look different, and performance on them is not measured here. "
                "Skin types V-VI are barely represented in HAM10000. The model is decision support for "
                "clinicians, never a diagnosis on its own."
            ),
        },
    }


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, action="append", default=[], help="baseline run directories")
    parser.add_argument("--model-version", required=True)
    parser.add_argument("--artifact-dir", type=Path, help="default: inference/artifacts/<model version>")
    parser.add_argument("--target-sensitivity", type=float, default=0.96)
    parser.add_argument(
        "--melanoma-target", type=float, default=None, help="also flag at least this share of validation melanomas"
    )
    parser.add_argument("--views", type=int, choices=(1, 2, 4, 8), default=1, help="test-time views served")
    parser.add_argument("--make-default", action="store_true", help="serve this artifact from now on")
    parser.add_argument(
        "--previous-run",
        type=Path,
        action="append",
        default=[],
        help="earlier runs this one continued from (--init-from), for the training curves",
    )
    parser.add_argument("--notes", default="", help="a paragraph on how this model was trained, for the report")
    parser.add_argument("--data", type=Path, help="HAM10000 folder for fitting the photo gate (default: the run's)")
    parser.add_argument("--cache-dir", type=Path, help="model-pixel cache shared with training.train")
    args = parser.parse_args(argv)
    destination = args.artifact_dir or ARTIFACTS_DIR / args.model_version
    if destination.exists():
        raise SystemExit(f"{destination} exists: a model version is never overwritten; choose a new --model-version")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from training.export import export_artifact

    run = json.loads((args.run_dir / "run.json").read_text())
    results = calibrated_results(args.run_dir, args.target_sensitivity, args.views, args.melanoma_target)
    comparison = [comparison_row(args.run_dir, results)]
    for baseline in args.baseline:
        comparison.append(comparison_row(baseline, calibrated_results(baseline, args.target_sensitivity)))

    data_dir = args.data or Path(run.get("data_dir") or DEFAULT_DATA_DIR)
    intervals = test_intervals(args.run_dir, data_dir, results)
    model = keras.models.load_model(args.run_dir / "best.keras", compile=False)
    served_ms = litert_ms_per_image(model)
    context = describe(run, results, args.target_sensitivity, comparison)
    context["sections"]["Uncertainty"] = (
        "95% intervals of the test figures (2,000 bootstrap draws of the test split's lesions, every photo of "
        "a drawn lesion coming along): "
        + "; ".join(f"{name.replace('_', ' ')} {low:.3f} to {high:.3f}" for name, (low, high) in intervals.items())
        + ". The rare classes have a dozen or so test photos each, so one photo more or less named right moves "
        "balanced accuracy by about a percentage point."
    )
    context["served_ms"] = served_ms
    context["served_threads"] = default_threads()
    if args.notes:
        context["sections"]["Training"] += " " + args.notes
    report_dir = write_report(
        args.run_dir / "report",
        title=f"Model {args.model_version}: evaluation report",
        metrics=results["test"],
        run_dirs=[*args.previous_run, args.run_dir],
        context=context,
        comparison=comparison,
    )
    shutil.copy(args.run_dir / "split.csv", report_dir / "split.csv")
    # The photo gate: statistics on the training split, thresholds on validation, figures on test.
    gate_fit = functools.partial(
        fit_gate_into, data_dir=data_dir, split_csv=args.run_dir / "split.csv", cache_dir=args.cache_dir
    )
    export_artifact(
        gate_fit=gate_fit,
        keras_model=model,
        destination=destination,
        model_version=args.model_version,
        temperature=results["temperature"],
        calibration=results["calibration"],
        prevalence=results["prevalence"],
        views=args.views,
        thresholds=results["thresholds"],
        target_sensitivity=args.target_sensitivity,
        metrics={
            "test": metrics_module.summary(results["test"]),
            "test_intervals": intervals,
            "validation": metrics_module.summary(results["val"]),
            "litert_ms_per_image": round(served_ms, 2),
        },
        training=run,
        report_dir=report_dir,
    )
    if args.make_default and destination.parent == ARTIFACTS_DIR:
        partial = DEFAULT_FILE.with_suffix(".part")
        partial.write_text(destination.name + "\n")
        partial.replace(DEFAULT_FILE)
    print(
        json.dumps(
            {
                "artifact": str(destination),
                "test": metrics_module.summary(results["test"]),
                "test_intervals": intervals,
                "validation": metrics_module.summary(results["val"]),
                "views": args.views,
                "thresholds": results["thresholds"],
                "litert_ms_per_image": served_ms,
            },
            indent=2,
        )
    )
    return destination


if __name__ == "__main__":
    main()
