"""Logits of the validation and test splits under each of the eight test-time views, as served.

    python -m training.view_logits --run-dir runs/mobilenet_v2 [--cache-dir runs/cache]

Converts the run's ``best.keras`` to LiteRT (or uses ``--tflite``) and runs every image of the
validation and test splits through the interpreter the worker uses, once per flip and quarter
turn (``inference.predictor.view``). Writes ``view-logits-{val,test}.npy`` (N x 8 x 7) and
``labels-{val,test}.npy`` into the run directory; ``training.finalize --views K`` averages the
first K views, which is what the worker does with an artifact exported with K views.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from inference.predictor import default_threads, view
from training import data as data_module

VIEWS = 8


def split_arrays(run_dir: Path, data_dir: Path, cache_dir: Path | None, size: int) -> dict:
    """Pixels and labels of the validation and test splits, in the order ``training.train`` uses."""
    records = data_module.read_metadata(data_dir)
    assignment = data_module.read_split(run_dir / "split.csv")
    records = [r for r in records if r.image_id in assignment]
    arrays = {}
    for name in ("val", "test"):
        items = [r for r in records if assignment[r.image_id] == name]
        pixels = data_module.load_pixels(data_dir, [r.image_id for r in items], size, cache_dir)
        arrays[name] = (pixels, np.array([r.label for r in items], dtype=np.int32))
    return arrays


def view_logits(tflite: Path, pixels: np.ndarray, views: int = VIEWS) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(tflite), num_threads=default_threads()).get_signature_runner()
    (input_name,) = runner.get_input_details().keys()
    out = np.empty((len(pixels), views, 7), dtype=np.float32)
    for i, image in enumerate(pixels):
        image = image.astype(np.float32)
        for v in range(views):
            out[i, v] = runner(**{input_name: np.ascontiguousarray(view(image, v))[None]})["logits"][0]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=data_module.DEFAULT_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--tflite", type=Path, help="a converted serving model (default: convert best.keras)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--views", type=int, default=VIEWS, choices=(1, 2, 4, 8), help="compute only the first N views")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.time()
    arrays = split_arrays(args.run_dir, args.data, args.cache_dir, args.size)
    with tempfile.TemporaryDirectory() as folder:
        tflite = args.tflite
        if tflite is None:
            import keras

            from training.export import convert_to_litert

            tflite = Path(folder) / "model.tflite"
            convert_to_litert(keras.models.load_model(args.run_dir / "best.keras", compile=False), tflite)
        for name, (pixels, labels) in arrays.items():
            logits = view_logits(tflite, pixels, args.views)
            np.save(args.run_dir / f"view-logits-{name}.npy", logits)
            np.save(args.run_dir / f"labels-{name}.npy", labels)
            print(f"{name}: {len(labels)} images x {args.views} views, {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
