"""Average the weights of checkpoints of one run (stochastic weight averaging, Izmailov et al. 2018).

    .venv/bin/python -m training.average --run-dir runs/swa runs/a/best.keras runs/b/best.keras

The checkpoints must share an architecture and come from one training trajectory (for example
the ends of successive cosine cycles started from each other), so that their average lies in
the same basin. BatchNorm layers are frozen during fine-tuning (the base weights have it
folded), so no statistics need recomputing. Writes ``best.keras`` and the first checkpoint's
``run.json`` and ``split.csv`` (with the averaged checkpoints noted), so the usual
``training.view_logits`` / ``training.compare_recipes`` / ``training.finalize`` steps apply.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def average_into(checkpoints: list[Path], run_dir: Path) -> Path:
    import keras
    import numpy as np

    if len(checkpoints) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    models = [keras.models.load_model(path, compile=False) for path in checkpoints]
    shapes = [[w.shape for w in model.get_weights()] for model in models]
    if any(shape != shapes[0] for shape in shapes[1:]):
        raise ValueError("the checkpoints do not share an architecture")
    averaged = [np.mean(layer, axis=0) for layer in zip(*(model.get_weights() for model in models), strict=True)]
    target = models[0]
    target.set_weights(averaged)
    run_dir.mkdir(parents=True, exist_ok=True)
    target.save(run_dir / "best.keras")
    source = checkpoints[0].parent
    run = json.loads((source / "run.json").read_text())
    run["weight_average_of"] = [str(path) for path in checkpoints]
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    if (source / "split.csv").exists():
        shutil.copy(source / "split.csv", run_dir / "split.csv")
    return run_dir / "best.keras"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="where the averaged checkpoint goes")
    parser.add_argument("checkpoints", type=Path, nargs="+")
    args = parser.parse_args(argv)
    print(average_into(args.checkpoints, args.run_dir))


if __name__ == "__main__":
    main()
