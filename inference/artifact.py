"""Reading a model artifact: a versioned folder with a manifest, checked at load time.

Layout (format version 2)::

    <model_version>/
        manifest.json     format version, classes, preprocessing spec, calibration, triage
                          thresholds, training prevalence, test-time views, metrics,
                          training-metadata hash, and ``files``: the SHA-256 of every other file
        model.tflite      the serving model (LiteRT): outputs "logits" and "features"
        model.keras       the Keras model it was exported from
        head.npz          the dense head (kernel, bias) for class activation maps
        calibration.npz   class-wise calibration (see ``inference.calibration``)
        thresholds.json   the triage thresholds (the manifest repeats them; both must agree)
        gate.npz          the photo gate's statistics (inference/gate.py); its thresholds are in
                          the manifest's ``gate`` section
        report/           the evaluation report (JSON, Markdown, PNG)

Format version 1 (``ham10000-mobilenetv2-v1``) has a temperature instead of calibration.npz and
its thresholds only in the manifest; it is still served and read.

A version folder is immutable: export refuses to write over one, and ``load_artifact`` checks
the hash of every file in ``files`` and refuses a top-level file that ``files`` does not list,
so any file added to the artifact later is covered without a special case. The hash of
``manifest.json`` (which holds all the others) is the artifact's hash, stored with every
prediction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from inference.calibration import Calibration
from inference.preprocessing import CLASSES, MALIGNANT_CLASSES, SPEC_NAME

FORMAT_VERSION = 2
SUPPORTED_FORMAT_VERSIONS = (1, 2)
# Serving needs the photo gate: an artifact without one (every format 1 artifact, or a format 2
# one without a ``gate`` section) is refused, never served with the gate off. A model that
# diagnoses any picture it is handed refers photos of parrots as suspected cancers, and a
# warning in a server log protects no patient. Such an artifact can still be read for the
# thresholds of predictions it made earlier (``serving=False``).
MANIFEST = "manifest.json"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
DEFAULT_FILE = ARTIFACTS_DIR / "DEFAULT"


class ArtifactError(Exception):
    """The artifact is missing, damaged or of a format this code cannot serve."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict = field(repr=False)
    sha256: str = ""  # the hash of manifest.json, which lists the hash of every other file

    @property
    def model_version(self) -> str:
        return self.manifest["model_version"]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.manifest["classes"])

    @property
    def input_size(self) -> int:
        return int(self.manifest["preprocessing"]["input_size"])

    @property
    def temperature(self) -> float:
        return float(self.manifest.get("temperature", 1.0))

    @cached_property
    def calibration(self) -> Calibration:
        section = self.manifest.get("calibration")
        if section:
            return Calibration.load(self.path / section["file"])
        return Calibration.temperature(self.temperature, len(self.classes))

    @property
    def prevalence(self) -> np.ndarray:
        """How common each class was in training, for ``balanced_class``.

        Format 1 recorded only the class weights, which were n / (7 n_c) times a malignant
        boost, so the prevalence is recovered from them.
        """
        recorded = self.manifest.get("training_prevalence")
        if recorded:
            values = np.array([float(recorded[name]) for name in self.classes])
        else:
            training = self.manifest.get("training", {})
            weights = training.get("class_weights", {})
            boost = float(training.get("malignant_boost", 1.0))
            if not weights:
                return np.full(len(self.classes), 1.0 / len(self.classes))
            values = np.array(
                [(boost if name in MALIGNANT_CLASSES else 1.0) / float(weights[name]) for name in self.classes]
            )
        return values / values.sum()

    @property
    def test_time_views(self) -> int:
        return int(self.manifest.get("test_time_augmentation", {}).get("views", 1))

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.manifest["thresholds"].items()}

    @property
    def serving_file(self) -> Path:
        return self.path / self.manifest["serving"]["file"]

    @property
    def head_file(self) -> Path | None:
        name = self.manifest.get("heatmap", {}).get("file")
        return self.path / name if name else None

    @property
    def has_gate(self) -> bool:
        gate = self.manifest.get("gate") or {}
        return bool(gate.get("file")) and isinstance(gate.get("thresholds"), dict)

    @property
    def gate_file(self) -> Path:
        return self.path / self.manifest["gate"]["file"]

    @property
    def gate_thresholds(self) -> dict[str, float | list[float]]:
        return {
            k: [float(x) for x in v] if isinstance(v, list) else float(v)
            for k, v in self.manifest["gate"]["thresholds"].items()
        }

    @property
    def report_dir(self) -> Path:
        return self.path / "report"


def default_artifact_dir() -> Path:
    """The artifact the portal serves unless told otherwise: named in ``artifacts/DEFAULT``."""
    if not DEFAULT_FILE.exists():
        raise ArtifactError(f"no default model: {DEFAULT_FILE} is missing")
    return ARTIFACTS_DIR / DEFAULT_FILE.read_text().strip()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_dir_for(model_version: str) -> Path:
    """The folder of a shipped version, by name (names are plain folder names, never paths)."""
    if not model_version or "/" in model_version or "\\" in model_version or model_version.startswith("."):
        raise ArtifactError(f"not a model version name: {model_version!r}")
    return ARTIFACTS_DIR / model_version


@lru_cache(maxsize=8)
def artifact_for_version(model_version: str, sha256: str = "") -> Artifact:
    """A shipped version, verified; with ``sha256`` it must be exactly the artifact that hash names."""
    artifact = load_artifact(artifact_dir_for(model_version), serving=False)
    if sha256 and artifact.sha256 != sha256:
        raise ArtifactError(
            f"model artifact {model_version} has changed since it scored: hash {artifact.sha256[:12]}, "
            f"recorded {sha256[:12]}"
        )
    return artifact


def verify_files(folder: Path, manifest: dict) -> None:
    """Every file the manifest lists matches its hash, and no top-level file goes unlisted."""
    files = manifest.get("files") or {}
    if not files:
        raise ArtifactError(f"model artifact {folder.name} lists no file hashes")
    for name, expected in files.items():
        file = folder / name
        if ".." in Path(name).parts or not file.is_file():
            raise ArtifactError(f"model artifact {folder.name} is missing {name}")
        if sha256_file(file) != expected:
            raise ArtifactError(f"model artifact {folder.name}: {name} does not match its recorded hash")
    for file in folder.iterdir():
        if file.is_file() and file.name != MANIFEST and file.name not in files:
            raise ArtifactError(f"model artifact {folder.name}: {file.name} is not in the manifest's file hashes")


def load_artifact(path: str | Path | None = None, *, verify: bool = True, serving: bool = True) -> Artifact:
    """Open and check an artifact folder; ``None`` means the default artifact.

    ``serving``: the artifact is to score photos, so it must carry a photo gate. Reading an
    earlier version's thresholds (``artifact_for_version``) does not need one.
    """
    folder = Path(path) if path else default_artifact_dir()
    manifest_file = folder / MANIFEST
    if not manifest_file.exists():
        raise ArtifactError(f"{folder} is not a model artifact: {MANIFEST} is missing")
    raw = manifest_file.read_bytes()
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{manifest_file} is not valid JSON: {exc}") from exc
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ArtifactError(
            f"model artifact {folder.name} has format version {version!r}; "
            f"this code serves format versions {SUPPORTED_FORMAT_VERSIONS}. Re-export the model."
        )
    if tuple(manifest.get("classes", ())) != CLASSES:
        raise ArtifactError(f"model artifact {folder.name} has classes {manifest.get('classes')}, expected {CLASSES}")
    if manifest.get("preprocessing", {}).get("name") != SPEC_NAME:
        raise ArtifactError(
            f"model artifact {folder.name} was trained with preprocessing "
            f"{manifest.get('preprocessing', {}).get('name')!r}, this code does {SPEC_NAME!r}"
        )
    artifact = Artifact(folder, manifest, hashlib.sha256(raw).hexdigest())
    if serving and version == 1:
        raise ArtifactError(
            f"model artifact {folder.name} has format version 1, which has no photo gate; this code serves "
            f"format version {FORMAT_VERSION} with a gate. Fit one into a new version with: python -m training.gate "
            f"build --source {folder} --model-version {folder.name}-gate"
        )
    if serving and not artifact.has_gate:
        raise ArtifactError(
            f"model artifact {folder.name} has no photo gate (its manifest lacks a gate file and thresholds); "
            "it is refused so that no photo is diagnosed unchecked. Fit one with python -m training.gate build."
        )
    if artifact.has_gate and artifact.manifest["gate"]["file"] not in manifest.get("files", {}):
        raise ArtifactError(
            f"model artifact {folder.name}: the gate file {manifest['gate']['file']} has no recorded hash"
        )
    if verify:
        verify_files(folder, manifest)
        thresholds_file = manifest.get("thresholds_file")
        if thresholds_file:
            try:
                recorded = json.loads((folder / thresholds_file).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ArtifactError(f"model artifact {folder.name}: cannot read {thresholds_file}: {exc}") from exc
            if recorded != manifest.get("thresholds"):
                raise ArtifactError(
                    f"model artifact {folder.name}: the manifest's thresholds differ from {thresholds_file}"
                )
        try:
            _ = artifact.calibration
        except (OSError, KeyError, ValueError) as exc:
            raise ArtifactError(f"model artifact {folder.name}: cannot read its calibration: {exc}") from exc
    return artifact
