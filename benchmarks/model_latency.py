"""Model-only latency per image and the memory of a process serving the model.

    .venv/bin/python -m benchmarks.model_latency [--model ARTIFACT_DIR] [--images 500] [--threads 1]

Scores real HAM10000 photos (../shared/data/ham10000) with the LiteRT predictor the worker
uses and prints, per image:

- model: the interpreter call alone (``Predictor.run``) on prepared pixels;
- worker compute: what a worker does per photo besides the database: decode the stored
  photo (lossless PNG, as uploads are stored), preprocess, run the model over the artifact's
  test-time views, calibrate, CAM, draw and encode the heatmap layer (an indexed PNG);

and the process's resident memory (VmRSS) before and after loading the model and after
scoring, plus its peak (VmHWM). Targets: model median <= 5 ms, RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from pathlib import Path

from benchmarks.figures import percentile

HAM10000 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ham10000" / "images"


def memory_mb() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def describe(name: str, values: list[float]) -> str:
    return (
        f"{name:<16} n={len(values):<5} median {statistics.median(values):7.2f} ms   "
        f"p95 {percentile(values, 95):7.2f} ms   max {max(values):7.2f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="artifact folder (default: the deployed model)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument(
        "--threads", type=int, default=None, help="interpreter threads (default: the worker's own default)"
    )
    parser.add_argument("--data", type=Path, default=HAM10000)
    args = parser.parse_args(argv)

    baseline = memory_mb()
    from inference.artifact import load_artifact
    from inference.heatmap import overlay_layer_png
    from inference.predictor import Predictor
    from inference.preprocessing import load_image, model_pixels

    imported = memory_mb()
    predictor = Predictor(load_artifact(args.model), num_threads=args.threads)
    loaded = memory_mb()

    files = sorted(args.data.glob("*.jpg"))[: args.images]
    if not files:
        raise SystemExit(f"no HAM10000 images in {args.data}")
    payloads = []
    for file in files:  # stored as the upload stores them: decoded, upright, lossless PNG
        buffer = io.BytesIO()
        load_image(file).save(buffer, format="PNG", compress_level=1)
        payloads.append(buffer.getvalue())
    size = predictor.artifact.input_size
    pixels = [model_pixels(load_image(io.BytesIO(data)), size) for data in payloads[:50]]
    for sample in pixels[:20]:  # warm-up: first calls allocate
        predictor.run(sample)

    model_ms, compute_ms = [], []
    for data in payloads:
        started = time.perf_counter()
        image = load_image(io.BytesIO(data))
        prepared = model_pixels(image, size)
        model_started = time.perf_counter()
        predictor.run(prepared)
        model_ms.append((time.perf_counter() - model_started) * 1000)
        scores = predictor.predict_pixels(prepared)
        overlay_layer_png(image, scores.activation_map)
        # worker compute = decode + preprocess + one scoring with CAM + heatmap (the run above excluded)
        compute_ms.append((time.perf_counter() - started) * 1000 - model_ms[-1])
    after = memory_mb()

    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"model: {predictor.model_version} ({size}x{size}), LiteRT threads={predictor.threads}, "
        f"{len(files)} HAM10000 photos"
    )
    print(describe("model", model_ms))
    print(describe("worker compute", compute_ms))
    print(
        f"RSS: start {baseline['VmRSS']:.0f} MB, after imports {imported['VmRSS']:.0f} MB, "
        f"model loaded {loaded['VmRSS']:.0f} MB, after scoring {after['VmRSS']:.0f} MB, peak {after['VmHWM']:.0f} MB"
    )


if __name__ == "__main__":
    main()
