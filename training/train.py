"""Train a lesion classifier on a HAM10000-style folder.

    python -m training.train --arch mobilenet_v2 --run-dir runs/mobilenet_v2
    python -m training.train --arch mobilenet_v2 --run-dir runs/mobilenet_v2 --resume

A run directory holds the split, per-epoch logs, the best checkpoint and the logits of
the validation and test splits; ``python -m training.finalize`` turns it into an artifact.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from inference.preprocessing import CLASSES, MALIGNANT_CLASSES
from training import data as data_module

ARCH_DEFAULT_SIZE = {"mobilenet_v2": 224, "lenet5": 32, "alexnet": 128}


def class_weights(labels: np.ndarray, malignant_boost: float, power: float = 1.0) -> dict[int, float]:
    """Balanced weights (n / (k * n_c)) raised to ``power`` (1: fully balanced, 0.5: milder, 0: none),
    with the malignant classes boosted further."""
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    weights = {}
    for index, name in enumerate(CLASSES):
        weight = (len(labels) / (len(CLASSES) * counts[index])) ** power if counts[index] else 0.0
        if name in MALIGNANT_CLASSES:
            weight *= malignant_boost
        weights[index] = float(weight)
    return weights


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCH_DEFAULT_SIZE), default="mobilenet_v2")
    parser.add_argument("--data", type=Path, default=data_module.DEFAULT_DATA_DIR)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--split-csv", type=Path, help="reuse this split instead of making one")
    parser.add_argument("--size", type=int, help="input size (default: the architecture's)")
    parser.add_argument("--base-weights", help="MobileNetV2 ImageNet weights file, or 'imagenet' to download")
    parser.add_argument("--head-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (maximum)")
    parser.add_argument("--fine-tune-from", type=int, default=0, help="first MobileNetV2 block to train (0: all)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--head-learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--malignant-boost", type=float, default=1.5)
    parser.add_argument(
        "--class-weight-power",
        type=float,
        default=1.0,
        help="balanced class weights raised to this power (calibration corrects the prior shift they cause)",
    )
    parser.add_argument(
        "--augment",
        choices=("standard", "strong", "capture"),  # training.augment.RECIPES
        default="standard",
        help="strong: any orientation, larger anisotropic crops, stronger colour casts, hair-like occlusions; "
        "capture: standard plus phone sharpening, sensor noise and soft photos",
    )
    parser.add_argument(
        "--balanced-sampling",
        action="store_true",
        help="draw every class equally often instead of weighting the loss (the recorded class weights are "
        "then the sampling's effective ones, for the prior correction)",
    )
    parser.add_argument(
        "--cosine",
        action="store_true",
        help="cosine decay of the fine-tuning learning rate over --epochs instead of halving on plateaus",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, help="use only this many images (smoke runs)")
    parser.add_argument("--cache-dir", type=Path, help="where decoded pixels are cached")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument(
        "--init-from", type=Path, help="start fine-tuning from this checkpoint (.keras), skipping the head stage"
    )
    parser.add_argument(
        "--weighted-validation",
        action="store_true",
        help="early-stop on the class-weighted validation loss (noisy: a dozen df images weigh as much as 150 nv)",
    )
    return parser.parse_args(argv)


def prepare_split(args: argparse.Namespace) -> tuple[list[data_module.Record], dict[str, str]]:
    records = data_module.read_metadata(args.data)
    split_file = args.run_dir / "split.csv"
    if args.split_csv:
        assignment = data_module.read_split(args.split_csv)
    elif args.resume and split_file.exists():
        assignment = data_module.read_split(split_file)
    else:
        if args.limit:
            records = _stratified_subset(records, args.limit, args.seed)
        assignment = data_module.grouped_split(records, seed=args.seed)
    records = [r for r in records if r.image_id in assignment]
    data_module.write_split(split_file, records, assignment)
    return records, assignment


def _stratified_subset(records: list, limit: int, seed: int) -> list:
    """A small subset with every class present, whole lesions only (for smoke runs)."""
    rng = np.random.default_rng(seed)
    by_dx: dict[str, list] = {}
    for record in records:
        by_dx.setdefault(record.dx, []).append(record)
    per_class = max(3, limit // len(by_dx))
    chosen = []
    for dx in sorted(by_dx):
        items = by_dx[dx]
        order = rng.permutation(len(items))[:per_class]
        chosen.extend(items[i] for i in order)
    return chosen


def make_dataset(tf, pixels, labels, weights, batch_size, augment=None, shuffle_seed=None, balanced=False):
    if balanced:
        # One endless, shuffled stream per class, drawn with equal probability; an epoch is
        # as many images as the split has, so rare classes repeat (under augmentation).
        streams = []
        for label in np.unique(labels):
            index = np.flatnonzero(labels == label)
            streams.append(
                tf.data.Dataset.from_tensor_slices((pixels[index], labels[index], weights[index]))
                .shuffle(len(index), seed=shuffle_seed, reshuffle_each_iteration=True)
                .repeat()
            )
        dataset = tf.data.Dataset.sample_from_datasets(
            streams, weights=[1.0 / len(streams)] * len(streams), seed=shuffle_seed
        ).take(len(labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((pixels, labels, weights))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)

    def to_float(x, y, w):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = augment(x)
        return x, y, w

    return dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from training import models

    size = args.size or ARCH_DEFAULT_SIZE[args.arch]
    args.run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    started = time.time()

    records, assignment = prepare_split(args)
    splits = {name: [r for r in records if assignment[r.image_id] == name] for name in data_module.SPLITS}
    print({name: len(items) for name, items in splits.items()}, flush=True)
    arrays = {}
    for name, items in splits.items():
        ids = [r.image_id for r in items]
        arrays[name] = (
            data_module.load_pixels(args.data, ids, size, args.cache_dir),
            np.array([r.label for r in items], dtype=np.int32),
        )
    weights = class_weights(arrays["train"][1], args.malignant_boost, args.class_weight_power)
    if args.balanced_sampling:
        # Equal sampling shifts the prior exactly as fully balanced weights would: record those
        # (for the prior correction) and weight the loss evenly.
        weights = class_weights(arrays["train"][1], 1.0, 1.0)
        weight_of = np.ones(len(CLASSES), dtype=np.float32)
    else:
        weight_of = np.array([weights[i] for i in range(len(CLASSES))], dtype=np.float32)
    print("class weights:", {CLASSES[i]: round(w, 3) for i, w in weights.items()}, flush=True)

    from training.augment import RECIPES

    augment = RECIPES[args.augment]

    train_ds = make_dataset(
        tf,
        *arrays["train"],
        weight_of[arrays["train"][1]],
        args.batch_size,
        augment,
        args.seed,
        balanced=args.balanced_sampling,
    )
    # Validation loss is unweighted by default: with balanced weights a handful of rare-class
    # images would dominate it and early stopping would follow their noise.
    val_weights = (
        weight_of[arrays["val"][1]] if args.weighted_validation else np.ones(len(arrays["val"][1]), np.float32)
    )
    val_ds = make_dataset(tf, *arrays["val"], val_weights, args.batch_size)

    verbose = 1 if sys.stdout.isatty() else 2
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    state_file = args.run_dir / "state.json"
    state = json.loads(state_file.read_text()) if args.resume and state_file.exists() else {}
    best_path = args.run_dir / "best.keras"
    if not args.resume:  # a fresh run never silently continues from an older run's backup
        for backup in args.run_dir.glob("backup-*"):
            shutil.rmtree(backup)

    def callbacks(stage: str) -> list:
        chosen = [
            keras.callbacks.CSVLogger(str(args.run_dir / f"history-{stage}.csv"), append=args.resume),
            keras.callbacks.BackupAndRestore(str(args.run_dir / f"backup-{stage}")),
            keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_loss", save_best_only=True),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True),
        ]
        if not args.cosine:  # a schedule owns the learning rate; plateau halving would fight it
            chosen.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6))
        return chosen

    if args.arch == "mobilenet_v2":
        model, base = models.mobilenet_v2(size, models.resolve_base_weights(args.base_weights))
        head_weights = args.run_dir / "head.weights.h5"
        if args.init_from and str(args.init_from).endswith(".weights.h5"):
            model.load_weights(str(args.init_from))
        elif args.init_from:
            model.set_weights(keras.models.load_model(args.init_from, compile=False).get_weights())
        elif state.get("head_done") and head_weights.exists():
            model.load_weights(str(head_weights))
        elif args.head_epochs:
            models.set_trainable_from(base, None)
            model.compile(keras.optimizers.Adam(args.head_learning_rate), loss, metrics=metrics)
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=args.head_epochs,
                verbose=verbose,
                callbacks=[keras.callbacks.CSVLogger(str(args.run_dir / "history-head.csv"))],
            )
            model.save_weights(str(head_weights))
            state["head_done"] = True
            state_file.write_text(json.dumps(state))
        models.set_trainable_from(base, args.fine_tune_from)
        stage = "finetune"
    else:
        model = models.lenet5(size) if args.arch == "lenet5" else models.alexnet(size)
        stage = "train"
        args.learning_rate = 1e-3 if args.arch == "lenet5" else 3e-4
    learning_rate = args.learning_rate
    if args.cosine:
        steps = args.epochs * int(np.ceil(len(arrays["train"][1]) / args.batch_size))
        learning_rate = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps, alpha=0.05)
    model.compile(keras.optimizers.Adam(learning_rate), loss, metrics=metrics)
    model.summary(print_fn=lambda line, *a, **k: None)
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=verbose, callbacks=callbacks(stage))
    model.save(str(best_path))  # restore_best_weights left the best epoch in memory

    for name in ("val", "test"):
        pixels, labels = arrays[name]
        logits = model.predict(pixels.astype(np.float32), batch_size=64, verbose=0)
        np.save(args.run_dir / f"logits-{name}.npy", logits)
        np.save(args.run_dir / f"labels-{name}.npy", labels)
    run = {
        "arch": args.arch,
        "input_size": size,
        "seed": args.seed,
        "epochs_max": args.epochs,
        "head_epochs": args.head_epochs if args.arch == "mobilenet_v2" else 0,
        "fine_tune_from_block": args.fine_tune_from if args.arch == "mobilenet_v2" else None,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "class_weights": {CLASSES[i]: w for i, w in weights.items()},
        "malignant_boost": args.malignant_boost,
        "class_weight_power": args.class_weight_power,
        "sampling": "class-balanced" if args.balanced_sampling else "natural",
        "augmentation": args.augment,
        "schedule": "cosine decay" if args.cosine else "halved on plateaus",
        "init_from": str(args.init_from) if args.init_from else None,
        "training_metadata_sha256": data_module.metadata_digest(records, assignment),
        "split_sizes": {name: len(items) for name, items in splits.items()},
        "parameters": int(model.count_params()),
        "train_seconds": round(time.time() - started, 1),
        "data_dir": str(args.data),
    }
    (args.run_dir / "run.json").write_text(json.dumps(run, indent=2))
    print(f"done in {run['train_seconds']} s: {best_path}", flush=True)
    return args.run_dir


if __name__ == "__main__":
    main()
