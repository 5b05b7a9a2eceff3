"""Evaluate a predictions file (from ``python -m inference.batch``) against labels.

    python -m training.evaluate --predictions predictions.csv --labels labels.csv --out report/

Labels may be HAM10000 style (``image_id, dx``) or ISIC 2018 ground truth (``image`` plus
one-hot columns ``MEL, NV, BCC, AKIEC, BKL, DF, VASC``). With a ``lesion_id`` column (as in
``HAM10000_metadata.csv``) the printed 95% intervals resample whole lesions, else photos.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from inference.preprocessing import CLASSES
from training.metrics import bootstrap_intervals, evaluate, summary
from training.report import write_report


def read_lesions(path: Path) -> dict[str, str]:
    """Lesion id per image, when the labels file has a ``lesion_id`` column (HAM10000's metadata does)."""
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        if "lesion_id" not in (reader.fieldnames or ()):
            return {}
        lesions = {}
        for row in reader:
            image = row.get("image_id") or row["image"]
            lesions[image] = row["lesion_id"] or image  # no lesion named (ISIC 2019 leaves some blank): its own
        return lesions


def read_labels(path: Path) -> dict[str, int]:
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        labels = {}
        if {"image_id", "dx"} <= fields:
            for row in reader:
                labels[row["image_id"]] = CLASSES.index(row["dx"].strip().lower())
        elif "image" in fields and {c.upper() for c in CLASSES} <= fields:
            for row in reader:
                hot = [float(row[c.upper()]) for c in CLASSES]
                if sum(hot) != 1:
                    raise ValueError(f"{path}: {row['image']} is not one-hot: {hot}")
                labels[row["image"]] = int(np.argmax(hot))
        else:
            raise ValueError(f"{path}: expected columns image_id,dx or image,MEL,NV,BCC,AKIEC,BKL,DF,VASC")
    return labels


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]:
    """Ids, probabilities, referral flags and ``balanced_class`` indices (None for files without the column)."""
    ids, rows, refer, balanced = [], [], [], []
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            ids.append(row["image_id"])
            rows.append([float(row[c]) for c in CLASSES])
            refer.append(int(row["refer"]))
            if row.get("balanced_class"):
                balanced.append(CLASSES.index(row["balanced_class"]))
    if balanced and len(balanced) != len(ids):
        raise ValueError(f"{path}: balanced_class is missing on some rows")
    probabilities = np.array(rows, dtype=float).reshape(-1, len(CLASSES))
    return ids, probabilities, np.array(refer, dtype=bool), (np.array(balanced, dtype=int) if balanced else None)


def evaluate_files(predictions: Path, labels: Path) -> dict:
    ids, probabilities, refer, balanced = read_predictions(predictions)
    truth = read_labels(labels)
    missing = [i for i in ids if i not in truth]
    if missing:
        raise ValueError(f"{len(missing)} predicted images have no label, e.g. {missing[:3]}")
    y = np.array([truth[i] for i in ids], dtype=int)
    return evaluate(probabilities, y, refer=refer, balanced=balanced)


def gate_turned_back(predictions: Path) -> dict | None:
    """How many photos the photo gate turned back, by reason (None for files without the gate's column)."""
    with Path(predictions).open(newline="") as handle:
        reasons = [row["gate"] for row in csv.DictReader(handle) if "gate" in row]
    if not reasons:
        return None
    back = [reason for reason in reasons if reason != "ok"]
    return {
        "photos": len(back),
        "share": round(len(back) / len(reasons), 4),
        "reasons": {reason: back.count(reason) for reason in sorted(set(back))},
    }


def intervals_of_files(predictions: Path, labels: Path) -> dict[str, list[float]]:
    """95% bootstrap intervals of the headline figures, by lesion when the labels name lesions."""
    ids, probabilities, refer, balanced = read_predictions(predictions)
    truth, lesions = read_labels(labels), read_lesions(labels)
    y = np.array([truth[i] for i in ids], dtype=int)
    named = balanced if balanced is not None else probabilities.argmax(axis=1)
    groups = np.array([lesions[i] for i in ids]) if lesions and all(i in lesions for i in ids) else None
    return bootstrap_intervals(y, named, refer, groups)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--title", default="Evaluation report")
    args = parser.parse_args(argv)
    metrics = evaluate_files(args.predictions, args.labels)
    write_report(
        args.out,
        title=args.title,
        metrics=metrics,
        context={"evaluated_on": f"{args.predictions.name} against {args.labels.name}"},
    )
    headline = summary(metrics)
    headline["intervals_95"] = intervals_of_files(args.predictions, args.labels)
    turned_back = gate_turned_back(args.predictions)
    if turned_back is not None:
        # inference.batch writes the portal's referral for a photo the gate turned back: 1 when it
        # shows skin and a malignant class reaches its threshold, 0 when it is not skin.
        headline["gate_turned_back"] = turned_back
    print(json.dumps(headline, indent=2))
    return headline


if __name__ == "__main__":
    main()
