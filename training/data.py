"""HAM10000-style folders: metadata, the lesion-grouped split and cached model pixels."""

from __future__ import annotations

import csv
import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.preprocessing import CLASSES, load_image, model_pixels

SPLITS = ("train", "val", "test")
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ham10000"


@dataclass(frozen=True)
class Record:
    image_id: str
    lesion_id: str
    dx: str

    @property
    def label(self) -> int:
        return CLASSES.index(self.dx)


def read_metadata(data_dir: Path) -> list[Record]:
    """Read ``HAM10000_metadata.csv`` (or any ``*.csv`` with lesion_id, image_id, dx)."""
    data_dir = Path(data_dir)
    candidates = [data_dir / "HAM10000_metadata.csv", *sorted(data_dir.glob("*.csv"))]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise FileNotFoundError(f"no metadata CSV in {data_dir}")
    records = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["dx"] not in CLASSES:
                raise ValueError(f"{path}: unknown diagnosis {row['dx']!r} for {row['image_id']}")
            records.append(Record(row["image_id"], row["lesion_id"], row["dx"]))
    return records


def image_path(data_dir: Path, image_id: str) -> Path:
    folder = Path(data_dir) / "images"
    for suffix in (".jpg", ".jpeg", ".png"):
        path = folder / f"{image_id}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"no image file for {image_id} in {folder}")


def grouped_split(
    records: list[Record], *, seed: int = 42, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, str]:
    """Assign every image to train/val/test, keeping each lesion in one split.

    Lesions are stratified by diagnosis: within each diagnosis the lesions are shuffled
    with ``seed`` and dealt to the test and validation splits until each holds its share
    of that diagnosis' images; the rest go to training.
    """
    lesions: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        lesions[record.lesion_id].append(record)
    by_dx: dict[str, list[str]] = defaultdict(list)
    for lesion_id, items in lesions.items():
        diagnoses = {item.dx for item in items}
        if len(diagnoses) != 1:
            raise ValueError(f"lesion {lesion_id} has several diagnoses: {sorted(diagnoses)}")
        by_dx[items[0].dx].append(lesion_id)

    rng = random.Random(seed)
    assignment: dict[str, str] = {}
    for dx in sorted(by_dx):
        lesion_ids = sorted(by_dx[dx])
        rng.shuffle(lesion_ids)
        total = sum(len(lesions[lid]) for lid in lesion_ids)
        quota = {"test": fractions[2] * total, "val": fractions[1] * total}
        filled = {"test": 0, "val": 0}
        for lesion_id in lesion_ids:
            size = len(lesions[lesion_id])
            split = "train"
            for candidate in ("test", "val"):
                if filled[candidate] + size / 2 <= quota[candidate]:
                    split = candidate
                    filled[candidate] += size
                    break
            for item in lesions[lesion_id]:
                assignment[item.image_id] = split
    return assignment


def write_split(path: Path, records: list[Record], assignment: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "lesion_id", "dx", "split"])
        for record in sorted(records, key=lambda r: r.image_id):
            writer.writerow([record.image_id, record.lesion_id, record.dx, assignment[record.image_id]])


def read_split(path: Path) -> dict[str, str]:
    with Path(path).open(newline="") as handle:
        return {row["image_id"]: row["split"] for row in csv.DictReader(handle)}


def metadata_digest(records: list[Record], assignment: dict[str, str]) -> str:
    """A hash of exactly what the model was trained on: ids, labels and split."""
    digest = hashlib.sha256()
    for record in sorted(records, key=lambda r: r.image_id):
        digest.update(f"{record.image_id},{record.lesion_id},{record.dx},{assignment[record.image_id]}\n".encode())
    return digest.hexdigest()


def load_pixels(data_dir: Path, image_ids: list[str], size: int, cache_dir: Path | None = None) -> np.ndarray:
    """Model pixels (uint8, N x size x size x 3) for ``image_ids``, cached on disk if asked."""
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha256(("\n".join(image_ids) + f"|{size}|{data_dir}").encode()).hexdigest()[:16]
        cache_file = Path(cache_dir) / f"pixels-{size}-{key}.npy"
        if cache_file.exists():
            return np.load(cache_file)
    pixels = np.empty((len(image_ids), size, size, 3), dtype=np.uint8)
    for index, image_id in enumerate(image_ids):
        pixels[index] = model_pixels(load_image(image_path(data_dir, image_id)), size)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".part.npy")
        np.save(partial, pixels)
        partial.replace(cache_file)
    return pixels
