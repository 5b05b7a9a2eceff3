"""Join MobileNetV2 runs into one network whose logits are the mean of theirs (a deep ensemble).

    .venv/bin/python -m training.ensemble --run-dir runs/ensemble runs/a runs/b [runs/c ...]

Independently trained networks make different mistakes, so the mean of their logits often
ranks and calibrates better than any one of them (Lakshminarayanan et al. 2017); measure it
on validation (``training.compare_recipes``) before shipping one: the ensembles in the
README's training log did not beat v1's network alone. The joined network has the same form
as a single run, so serving, calibration, the photo gate, the heatmap and
``training.finalize`` need nothing new:

- one input and one ``scale`` layer feed every member's MobileNetV2 base;
- the members' last feature maps are concatenated into the ``features`` layer;
- the ``logits`` layer stacks the members' dense layers, divided by their number, so the
  logits are exactly the mean of the members' logits, and the class activation map behind
  the heatmap is exactly the mean of the members' maps (before it is rectified and scaled).

The members must share the split and the input size. ``run.json`` records the members, the
sum of their training times, and the geometric mean of their class weights: the prior
correction of a mean of logits is the mean of the members' corrections.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from training import data as data_module
from training import models


def _base_of(member):
    """The member's nested MobileNetV2 (the one layer that is itself a model)."""
    import keras

    nested = [layer for layer in member.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"{member.name} is not a MobileNetV2 run of training.train")
    return nested[0]


def join(members: list) -> object:
    """The joined Keras model of ``members`` (loaded MobileNetV2 runs)."""
    import keras
    from keras import layers

    if len(members) < 2:
        raise ValueError("an ensemble needs at least two runs")
    shapes = {tuple(member.input_shape[1:]) for member in members}
    if len(shapes) != 1:
        raise ValueError(f"the runs do not share an input size: {sorted(shapes)}")
    (shape,) = shapes
    inputs = keras.Input(shape, name="pixels")
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)
    maps, kernels, biases = [], [], []
    for number, member in enumerate(members, start=1):
        base = _base_of(member)
        copy = keras.applications.MobileNetV2(
            input_shape=shape, alpha=1.0, include_top=False, weights=None, name=f"member_{number}"
        )
        copy.set_weights(base.get_weights())
        maps.append(copy(scaled, training=False))
        kernel, bias = member.get_layer(models.LOGITS_LAYER).get_weights()
        kernels.append(kernel)
        biases.append(bias)
    features = layers.Concatenate(name="members")(maps)
    features = layers.Identity(name=models.FEATURES_LAYER)(features)
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    logits = layers.Dense(kernels[0].shape[1], name=models.LOGITS_LAYER)(pooled)
    joined = keras.Model(inputs, logits, name="mobilenet_v2_ensemble")
    joined.get_layer(models.LOGITS_LAYER).set_weights(
        [np.concatenate(kernels, axis=0) / len(members), np.mean(biases, axis=0)]
    )
    return joined


def join_runs(run_dirs: list[Path], run_dir: Path) -> Path:
    """Write the joined ``best.keras``, ``run.json`` and ``split.csv`` into ``run_dir``."""
    import keras

    runs = [json.loads((path / "run.json").read_text()) for path in run_dirs]
    splits = [data_module.read_split(path / "split.csv") for path in run_dirs]
    if any(split != splits[0] for split in splits[1:]):
        raise ValueError("the runs were trained on different splits")
    members = [keras.models.load_model(path / "best.keras", compile=False) for path in run_dirs]
    joined = join(members)
    run_dir.mkdir(parents=True, exist_ok=True)
    joined.save(run_dir / "best.keras")
    shutil.copy(run_dirs[0] / "split.csv", run_dir / "split.csv")
    classes = list(runs[0]["class_weights"])
    run = dict(runs[0])
    run.update(
        {
            "class_weights": {
                name: float(np.exp(np.mean([np.log(r["class_weights"][name]) for r in runs]))) for name in classes
            },
            "ensemble_of": [{"run": str(path), **r} for path, r in zip(run_dirs, runs, strict=True)],
            "train_seconds": round(sum(r["train_seconds"] for r in runs), 1),
            "parameters": int(joined.count_params()),
        }
    )
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    _mean_logits(run_dirs, run_dir)
    return run_dir / "best.keras"


def _mean_logits(run_dirs: list[Path], run_dir: Path) -> None:
    """The joined network's validation and test logits, when every member has its own: their mean.

    A member's are ``logits-{split}.npy`` (training.train) or the first view of
    ``view-logits-{split}.npy`` (training.view_logits). ``training.view_logits`` on the joined
    network computes them afresh, as served.
    """
    for split in ("val", "test"):
        logits = []
        for path in run_dirs:
            if (path / f"logits-{split}.npy").exists():
                logits.append(np.load(path / f"logits-{split}.npy"))
            elif (path / f"view-logits-{split}.npy").exists():
                logits.append(np.load(path / f"view-logits-{split}.npy")[:, 0])
        labels = run_dirs[0] / f"labels-{split}.npy"
        if len(logits) == len(run_dirs) and labels.exists():
            np.save(run_dir / f"logits-{split}.npy", np.mean(logits, axis=0))
            shutil.copy(labels, run_dir / f"labels-{split}.npy")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="where the joined network goes")
    parser.add_argument("runs", type=Path, nargs="+", help="run directories of training.train")
    args = parser.parse_args(argv)
    print(join_runs(args.runs, args.run_dir))


if __name__ == "__main__":
    main()
