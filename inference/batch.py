"""Score a folder of images with exactly the worker's code path.

    python -m inference.batch --images DIR --out predictions.csv [--model ARTIFACT_DIR]

One row per image: image_id, the seven calibrated probabilities, top_class (the most
likely class), refer (1 when the image would flag its case for a specialist at the artifact's
thresholds), balanced_class (the class the photo resembles most relative to how common it is),
gate (``ok`` or the photo gate's reason code, see inference/gate.py) and gate_score (its
out-of-domain score). A photo the gate turns back keeps its probabilities here, for analysis;
the portal shows no result for it, but when it shows skin (any reason but ``not_skin``) and a
malignant class reaches its threshold it still refers its case, so its ``refer`` is 1.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from PIL import UnidentifiedImageError

from inference.artifact import load_artifact
from inference.gate import NOT_SKIN, OK
from inference.predictor import Predictor
from inference.preprocessing import CLASSES, load_image
from inference.triage import flagged_classes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".heic", ".heif"}
COLUMNS = ["image_id", *CLASSES, "top_class", "refer", "balanced_class", "gate", "gate_score"]


def score_folder(images: Path, out: Path, predictor: Predictor) -> int:
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()
    except ImportError:  # HEIC stays unreadable; JPEG and PNG still work
        pass
    files = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    written = 0
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index, file in enumerate(files, 1):
            try:
                scores = predictor.predict_image(load_image(file))
            except (UnidentifiedImageError, OSError) as exc:
                print(f"skipped {file.name}: {exc}", file=sys.stderr)
                continue
            gate = scores.gate.reason if scores.gate is not None else OK
            # The portal's rule: a photo turned back for its quality or as unusual still refers its case
            # when a malignant class reaches its threshold; one that is not skin never does.
            refer = gate != NOT_SKIN and bool(flagged_classes(scores.probabilities, predictor.artifact.thresholds))
            writer.writerow(
                [
                    file.stem,
                    *(f"{scores.probabilities[c]:.6f}" for c in CLASSES),
                    scores.top_class,
                    int(bool(refer)),
                    scores.balanced_class,
                    gate,
                    f"{scores.gate.score:.4f}" if scores.gate is not None else "",
                ]
            )
            written += 1
            if index % 500 == 0:
                print(f"{index}/{len(files)}", file=sys.stderr)
    partial.replace(out)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="artifact folder (default: the deployed model)")
    args = parser.parse_args(argv)
    predictor = Predictor(load_artifact(args.model))
    count = score_folder(args.images, args.out, predictor)
    print(f"{count} images scored with {predictor.model_version} -> {args.out}")


if __name__ == "__main__":
    main()
