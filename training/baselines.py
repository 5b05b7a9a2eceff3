"""The LeNet-5 and AlexNet baselines of a served model, on the served model's own split.

    python -m training.train --arch lenet5 --run-dir runs/lenet5 \\
        --split-csv inference/artifacts/<version>/report/split.csv --cache-dir runs/cache
    python -m training.train --arch alexnet --size 64 --run-dir runs/alexnet \\
        --split-csv inference/artifacts/<version>/report/split.csv --cache-dir runs/cache
    python -m training.baselines --served inference/artifacts/<version> runs/lenet5 runs/alexnet

An artifact version is never rewritten, so the comparison that a version's report lacks is kept
beside it, in ``inference/baselines/<version>.json``, which the Model page reads. Each baseline
is calibrated and given referral thresholds exactly as ``training.finalize`` treats the served
network (prior correction and vector scaling on validation, thresholds at the served model's
target sensitivity), and measured on the same test images. A run whose split differs from the
served model's is refused.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
from pathlib import Path

from inference.baselines import BASELINES_DIR
from training.finalize import ARCH_LABEL, calibrated_results, comparison_row, recipe


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def baseline_entry(run_dir: Path, target_sensitivity: float, split_sha256: str) -> dict:
    run_split = run_dir / "split.csv"
    if sha256_of(run_split) != split_sha256:
        raise SystemExit(f"{run_dir}: its split.csv is not the served model's split; train it with --split-csv")
    run = json.loads((run_dir / "run.json").read_text())
    row = comparison_row(run_dir, calibrated_results(run_dir, target_sensitivity))
    return {**row, "arch": run["arch"], "recipe": recipe_text(run)}


def recipe_text(run: dict) -> str:
    """``training.finalize.recipe`` speaks of ImageNet weights; the baselines start from random weights."""
    if run["arch"] == "mobilenet_v2":
        return recipe(run)
    return (
        f"{ARCH_LABEL.get(run['arch'], run['arch'])} from random weights at {run['input_size']}x{run['input_size']} "
        f"(Adam {run['learning_rate']:g}, {run['epochs_max']} epochs at most, learning rate "
        f"{run.get('schedule', 'halved on plateaus')}, early stopping with patience 4 on the validation loss, best "
        f"checkpoint kept; seed {run['seed']}); balanced class weights, malignant classes a further "
        f"{run['malignant_boost']:g}x; augmentation: {run.get('augmentation', 'standard')}; "
        f"{run['train_seconds'] / 60:.1f} minutes on this repository's shared 2-core CPU."
    )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--served", type=Path, required=True, help="the served artifact's folder")
    parser.add_argument("runs", type=Path, nargs="+", help="baseline run directories (training.train)")
    parser.add_argument("--out-dir", type=Path, default=BASELINES_DIR)
    args = parser.parse_args(argv)

    manifest = json.loads((args.served / "manifest.json").read_text())
    version = manifest["model_version"]
    split_sha256 = sha256_of(args.served / "report" / "split.csv")
    target = float(manifest.get("threshold_target_sensitivity", 0.96))
    served_rows = json.loads((args.served / "report" / "metrics.json").read_text()).get("comparison", [])
    payload = {
        "model_version": version,
        "split_sha256": split_sha256,
        "split": "the served model's lesion-grouped split (report/split.csv): the same training, validation "
        "and test images",
        "calibration": "as the served model: prior correction and vector scaling fitted on validation, referral "
        f"thresholds fitted on validation to refer {target:.0%} of malignant lesions",
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "served": served_rows[:1],
        "baselines": [baseline_entry(run, target, split_sha256) for run in args.runs],
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{version}.json"
    part = out.with_name(out.name + ".part")
    part.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(part, out)
    for row in payload["baselines"]:
        print(
            f"{row['model']:<10} {row['input']:>7}  accuracy {row['accuracy']:.3f}"
            f"  balanced {row['balanced_accuracy']:.3f}"
            f"  macro F1 {row['macro_f1']:.3f}  melanoma recall {row['melanoma_recall']:.3f}"
            f"  sens/spec {row['malignant_sensitivity']:.3f}/{row['malignant_specificity']:.3f}  ECE {row['ece']:.3f}"
        )
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
