"""Shift stress test: the referral figures when photos are taken differently.

    python -m training.stress [--model inference/artifacts/<version>] [--split test] \\
        [--data ../shared/data/ham10000] [--cache-dir runs/stress-cache] [--limit N]

Scores every photo of a lesion-grouped split (default: the test split of the artifact's own
``report/split.csv``) through the served model and its photo gate, once as it is and once under
each shift of :mod:`training.shifts` at its mild and its strong strength, and prints for each:
malignant sensitivity, melanoma sensitivity, specificity (each with its lesion-grouped 95%
interval) and the share of photos the gate turned back. A photo counts as referred by the
portal's own rule (:func:`refers`): a malignant class reaches its threshold, and the gate did
not call it ``not_skin``.

Imports neither TensorFlow nor Django. ``--cache-dir`` keeps what the model made of each set.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from inference import gate as gate_module
from inference.artifact import load_artifact
from inference.preprocessing import load_image, model_pixels
from training import shifts
from training.operating_point import figures_at, lesion_bootstrap_weights

MILD_TARGET = 0.95  # malignant sensitivity the shipped thresholds keep under every mild shift


def split_records(split_csv: Path, data_dir: Path, split: str) -> list[dict]:
    """The split's photos in the metadata's order: image id, lesion id, label index."""
    from training.data import read_metadata

    with Path(split_csv).open(newline="") as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    return [
        {"image_id": r.image_id, "lesion_id": rows[r.image_id]["lesion_id"], "label": r.label}
        for r in read_metadata(data_dir)
        if rows.get(r.image_id, {}).get("split") == split
    ]


def describe_photos(predictor, data_dir: Path, image_ids: list[str], shift: str | None, strength: str) -> dict:
    """What the model and its gate make of each photo, as it is (``shift`` None) or shifted."""
    from training.data import image_path
    from training.gate import describe

    size = predictor.artifact.input_size
    pixels = np.empty((len(image_ids), size, size, 3), dtype=np.uint8)
    for index, image_id in enumerate(image_ids):
        image = load_image(image_path(data_dir, image_id))
        if shift is not None:
            image = shifts.shifted(image, shift, strength, seed=index)
        pixels[index] = model_pixels(image, size)
    return describe(predictor, pixels)


def described(predictor, data_dir, image_ids, shift, strength, cache_dir: Path | None, tag: str) -> dict:
    """:func:`describe_photos`, kept in ``cache_dir`` under the network's hash and ``tag``."""
    file = None
    if cache_dir is not None:
        name = "clean" if shift is None else f"{shift}-{strength}"
        # what the network makes of a photo does not depend on thresholds or gate: key by the network file
        network = predictor.artifact.manifest["files"][predictor.artifact.manifest["serving"]["file"]][:16]
        file = Path(cache_dir) / network / f"{tag}-{name}.npz"
        if file.exists():
            with np.load(file) as arrays:
                return {key: arrays[key] for key in arrays.files}
    result = describe_photos(predictor, data_dir, image_ids, shift, strength)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(file.name + ".part.npz")
        np.savez(partial, **result)
        partial.replace(file)
    return result


def gate_reasons(gate: gate_module.Gate | None, result: dict) -> list[str]:
    if gate is None:
        return [gate_module.OK] * len(result["logits"])
    from training.gate import decisions

    return decisions(gate, result)


def refers(probabilities: np.ndarray, reasons: list[str], thresholds: dict[str, float]) -> np.ndarray:
    """The portal's referral rule for each photo: a malignant class at its threshold, unless not skin.

    A photo the gate turned back for its quality or as unusual for a lesion still refers its case
    when its probabilities reach a threshold (the specialist is told the model could not read it
    reliably); a photo that does not show skin never does.
    """
    from training.operating_point import refer_mask

    return refer_mask(probabilities, thresholds) & (np.asarray(reasons) != gate_module.NOT_SKIN)


def row(predictor, result: dict, labels: np.ndarray, weights: np.ndarray) -> dict:
    probabilities = predictor.calibration.probabilities(result["logits"])
    reasons = gate_reasons(predictor.gate, result)
    refer = refers(probabilities, reasons, predictor.artifact.thresholds)
    figures = figures_at(refer, labels, weights)
    figures["turned_back"] = float(np.mean(np.asarray(reasons) != gate_module.OK))
    return figures


def cell(figure: dict) -> str:
    return f"{figure['point']:.3f} ({figure['low']:.3f}-{figure['high']:.3f})".ljust(26)


def main(argv: list[str] | None = None) -> dict:
    from training.data import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="artifact folder (default: the deployed model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--split-csv", type=Path, help="default: the artifact's report/split.csv")
    parser.add_argument("--cache-dir", type=Path, help="keep what the model made of each set here")
    parser.add_argument("--limit", type=int, help="only the first N photos (a quick look)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from inference.predictor import Predictor

    predictor = Predictor(load_artifact(args.model))
    split_csv = args.split_csv or predictor.artifact.report_dir / "split.csv"
    records = split_records(split_csv, args.data, args.split)[: args.limit]
    ids = [r["image_id"] for r in records]
    labels = np.array([r["label"] for r in records])
    weights = lesion_bootstrap_weights([r["lesion_id"] for r in records], len(records))
    print(
        f"model {predictor.model_version}, {args.split} split: {len(records)} photos, "
        f"thresholds {json.dumps({k: round(v, 4) for k, v in predictor.artifact.thresholds.items()})}"
    )
    header = f"{'shift':<22} {'strength':<8} {'malignant sens. (95% CI)':<26} {'melanoma sens. (95% CI)':<26} "
    header += f"{'specificity (95% CI)':<26} turned back"
    print(header)
    out: dict[str, dict] = {}
    failures = []
    plan = [("none", None, "")] + [(name, name, strength) for name in shifts.SHIFTS for strength in shifts.STRENGTHS]
    for label, shift, strength in plan:
        result = described(predictor, args.data, ids, shift, strength or "mild", args.cache_dir, args.split)
        figures = row(predictor, result, labels, weights)
        out[f"{label}/{strength or 'none'}"] = figures

        cells = " ".join(cell(figures[key]) for key in ("malignant_sensitivity", "melanoma_sensitivity", "specificity"))
        print(
            f"{label:<22} {strength or '-':<8} {cells} {figures['turned_back']:.1%}",
            flush=True,
        )
        if strength in ("", "mild") and figures["malignant_sensitivity"]["point"] < MILD_TARGET:
            failures.append(f"{label}/{strength or 'none'}")
    worst = min(
        (f["malignant_sensitivity"]["point"], k) for k, f in out.items() if k.endswith("/mild") or k.endswith("/none")
    )
    print(f"lowest malignant sensitivity, no shift or a mild one: {worst[0]:.3f} ({worst[1]}); target {MILD_TARGET}")
    print("mild shifts below target: " + (", ".join(failures) if failures else "none"))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)
