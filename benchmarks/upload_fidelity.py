"""Does scoring through the upload give what scoring the original photo gives?

    .venv/bin/python -m benchmarks.upload_fidelity [--model ARTIFACT_DIR] [--images 200] [--split test]

For HAM10000 photos of the lesion-grouped test split (the artifact's report/split.csv), scores
(a) the original file, decoded and EXIF-oriented (``inference.batch``'s path), and (b) the
photo as the portal stores it (``photos.uploads.image_validate``) and the worker reads it
back; prints the largest class-probability change (median and maximum over photos), and how
many photos change their top class, balanced class or referral. Target: no referral change,
largest change under 0.01.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
from pathlib import Path

HAM10000 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ham10000" / "images"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="artifact folder (default: the deployed model)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--split", default="test")
    parser.add_argument("--data", type=Path, default=HAM10000)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skinportal.settings.local")
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile

    from inference.artifact import load_artifact
    from inference.predictor import Predictor
    from inference.preprocessing import CLASSES, load_image
    from inference.triage import flagged_classes
    from photos.uploads import image_validate

    predictor = Predictor(load_artifact(args.model))
    thresholds = predictor.artifact.thresholds
    with (predictor.artifact.report_dir / "split.csv").open(newline="") as handle:
        ids = sorted(row["image_id"] for row in csv.DictReader(handle) if row["split"] == args.split)
    files = [args.data / f"{image_id}.jpg" for image_id in ids][: args.images]

    largest, changed = [], {"top_class": 0, "balanced_class": 0, "referral": 0}
    for file in files:
        original = predictor.predict_image(load_image(file))
        data = file.read_bytes()
        clean = image_validate(SimpleUploadedFile(file.name, data, content_type="image/jpeg"))
        stored = predictor.predict_image(load_image(io.BytesIO(clean.content)))
        largest.append(max(abs(original.probabilities[c] - stored.probabilities[c]) for c in CLASSES))
        changed["top_class"] += original.top_class != stored.top_class
        changed["balanced_class"] += original.balanced_class != stored.balanced_class
        changed["referral"] += bool(flagged_classes(original.probabilities, thresholds)) != bool(
            flagged_classes(stored.probabilities, thresholds)
        )
    print(f"model {predictor.model_version}, {len(files)} photos of the {args.split} split")
    print(
        f"largest class-probability change per photo: median {statistics.median(largest):.6f}, max {max(largest):.6f}"
    )
    print("photos whose answer changed: " + ", ".join(f"{k} {v}" for k, v in changed.items()))


if __name__ == "__main__":
    main()
