"""The photo gate against its targets, on data no threshold was chosen on.

    .venv/bin/python -m benchmarks.gate [--model ARTIFACT_DIR] [--cache-dir runs/cache] [--all-strengths]

With the artifact the portal serves (or ``--model``) and the lesion-grouped split it was
trained with (its ``report/split.csv``), prints:

- the share of test-split lesion photos turned back (target: at most 2%), by reason;
- the share of out-of-domain images turned back (target: at least 95%): natural photographs
  shipped with scikit-image and scikit-learn (whole and quartered) and synthetic images;
- the share of severely degraded test photos turned back (target: at least 90% for each kind;
  severity as documented in training/gate.py), and with ``--all-strengths`` every strength,
  with how often the model's top class still agrees with its reading of the undegraded photo;
- the gate's added compute per photo (target: at most 2 ms): ``Gate.decide`` on the pixels,
  pooled features and logits the model has already produced, next to the model call itself.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.figures import percentile


def shares(reasons: list[str]) -> str:
    counts = Counter(reasons)
    return ", ".join(f"{reason} {count}" for reason, count in counts.most_common())


def turned_back(reasons: list[str]) -> float:
    return sum(r != "ok" for r in reasons) / max(len(reasons), 1)


def main(argv: list[str] | None = None) -> None:
    from inference.artifact import load_artifact
    from inference.predictor import Predictor
    from training import gate as fitting
    from training.data import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="artifact folder (default: the deployed model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, help="model-pixel cache shared with training.train")
    parser.add_argument(
        "--all-strengths", action="store_true", help="every degradation strength, not only the severe one"
    )
    parser.add_argument("--timing-images", type=int, default=300)
    parser.add_argument("--timing-only", action="store_true", help="only the added compute per photo")
    args = parser.parse_args(argv)

    artifact = load_artifact(args.model)
    predictor = Predictor(artifact)
    gate = predictor.gate
    print(f"model {artifact.model_version}; gate thresholds {artifact.gate_thresholds}")
    splits = fitting.split_pixels(args.data, artifact.report_dir / "split.csv", artifact.input_size, args.cache_dir)
    test_pixels, _ = splits["test"]

    if not args.timing_only:
        measure_turned_back(predictor, gate, test_pixels, all_strengths=args.all_strengths)
    timing(predictor, gate, test_pixels, args.timing_images)


def measure_turned_back(predictor, gate, test_pixels, *, all_strengths: bool) -> None:
    from training import gate as fitting

    test = fitting.describe(predictor, test_pixels)
    reasons = fitting.decisions(gate, test)
    print(
        f"\ntest-split lesion photos turned back: {turned_back(reasons):.1%} of {len(reasons)} "
        f"(target <= 2%)  [{shares(reasons)}]"
    )

    ood_images = fitting.out_of_domain_pixels(predictor.artifact.input_size)
    names = list(ood_images)
    ood = fitting.describe(predictor, np.stack([ood_images[n] for n in names]))
    ood_reasons = fitting.decisions(gate, ood)
    print(
        f"out-of-domain images turned back: {turned_back(ood_reasons):.1%} of {len(names)} "
        f"(target >= 95%)  [{shares(ood_reasons)}]"
    )
    for group in ("skimage", "sklearn", "synthetic"):
        members = [
            r
            for n, r in zip(names, ood_reasons, strict=True)
            if n.startswith(group) or (group == "synthetic" and not n.startswith(("skimage", "sklearn")))
        ]
        if members:
            print(f"    {group:<10} {turned_back(members):6.1%} of {len(members)}")
    passed = [n for n, r in zip(names, ood_reasons, strict=True) if r == "ok"]
    if passed:
        print(f"    passed the gate: {', '.join(passed)}")

    clean_top = test["logits"].argmax(axis=1)
    print("\ndegraded test photos (severe strength marked *; target >= 90% turned back at it):")
    for kind, strengths in fitting.DEGRADATIONS.items():
        for strength in strengths if all_strengths else (fitting.SEVERE[kind],):
            described = fitting.describe_degraded(predictor, test_pixels, kind, strength)
            deg_reasons = fitting.decisions(gate, described)
            agree = float(np.mean(described["logits"].argmax(axis=1) == clean_top))
            mark = "*" if strength == fitting.SEVERE[kind] else " "
            print(
                f"  {mark} {kind:<12} {strength:>6g}: turned back {turned_back(deg_reasons):6.1%}   "
                f"top class agrees with the undegraded photo {agree:6.1%}   [{shares(deg_reasons)}]"
            )


def timing(predictor, gate, test_pixels, images: int) -> None:
    count = min(images, len(test_pixels))
    gate_ms, model_ms = [], []
    for index in range(count):
        pixels = test_pixels[index]
        started = time.perf_counter()
        logits, feature_map = predictor.run(pixels)
        model_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        gate.decide(pixels=pixels, features=feature_map.mean(axis=(0, 1)), logits=logits)
        gate_ms.append((time.perf_counter() - started) * 1000)
    print(
        f"\nadded per photo by the gate: median {statistics.median(gate_ms):.2f} ms, "
        f"p95 {percentile(gate_ms, 95):.2f} ms "
        f"(target <= 2 ms); the model call itself: median {statistics.median(model_ms):.2f} ms "
        f"({predictor.threads} threads, {count} photos)"
    )


if __name__ == "__main__":
    main()
