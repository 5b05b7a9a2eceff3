"""Reading a model artifact: a versioned folder with a manifest, checked at load time.

Layout (format version 2)::

    <model_version>/
        manifest.json   format version, classes, preprocessing spec, temperature,
                        triage thresholds, metrics, training-metadata hash, file hashes
        model.tflite    the serving model (LiteRT): outputs "logits" and "features"
        model.keras     the Keras model it was exported from
        head.npz        the dense head (kernel, bias) for class activation maps
        gate.npz        the photo gate's statistics (inference/gate.py); its thresholds are
                        in the manifest's ``gate`` section
        report/         the evaluation report (JSON, Markdown, PNG)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from inference.preprocessing import CLASSES, SPEC_NAME

# 2: the photo gate (``gate`` section and gate.npz) is required. An artifact without a gate
# is refused, never served with the gate off: a model that diagnoses any picture it is handed
# refers photos of parrots as suspected cancers, and a warning in a server log protects no patient.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
DEFAULT_FILE = ARTIFACTS_DIR / "DEFAULT"


class ArtifactError(Exception):
    """The artifact is missing, damaged or of a format this code cannot serve."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict = field(repr=False)

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
        return float(self.manifest["temperature"])

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
    def gate_file(self) -> Path:
        return self.path / self.manifest["gate"]["file"]

    @property
    def gate_thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.manifest["gate"]["thresholds"].items()}

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


def load_artifact(path: str | Path | None = None, *, verify: bool = True) -> Artifact:
    """Open and check an artifact folder; ``None`` means the default artifact."""
    folder = Path(path) if path else default_artifact_dir()
    manifest_file = folder / MANIFEST
    if not manifest_file.exists():
        raise ArtifactError(f"{folder} is not a model artifact: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{manifest_file} is not valid JSON: {exc}") from exc
    version = manifest.get("format_version")
    if version == 1:
        raise ArtifactError(
            f"model artifact {folder.name} has format version 1, which has no photo gate; this code serves "
            f"format version {FORMAT_VERSION}. Fit one into a new version with: python -m training.gate build "
            f"--source {folder} --model-version {folder.name}-gate"
        )
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"model artifact {folder.name} has format version {version!r}; "
            f"this code serves format version {FORMAT_VERSION}. Re-export the model."
        )
    if tuple(manifest.get("classes", ())) != CLASSES:
        raise ArtifactError(f"model artifact {folder.name} has classes {manifest.get('classes')}, expected {CLASSES}")
    if manifest.get("preprocessing", {}).get("name") != SPEC_NAME:
        raise ArtifactError(
            f"model artifact {folder.name} was trained with preprocessing "
            f"{manifest.get('preprocessing', {}).get('name')!r}, this code does {SPEC_NAME!r}"
        )
    gate = manifest.get("gate") or {}
    if not gate.get("file") or not isinstance(gate.get("thresholds"), dict):
        raise ArtifactError(
            f"model artifact {folder.name} has no photo gate (its manifest lacks a gate file and thresholds); "
            "it is refused so that no photo is diagnosed unchecked. Fit one with python -m training.gate build."
        )
    if gate["file"] not in manifest.get("files", {}):
        raise ArtifactError(f"model artifact {folder.name}: the gate file {gate['file']} has no recorded hash")
    artifact = Artifact(folder, manifest)
    if verify:
        for name, expected in manifest.get("files", {}).items():
            file = folder / name
            if not file.exists():
                raise ArtifactError(f"model artifact {folder.name} is missing {name}")
            if name in (manifest["serving"]["file"], gate["file"]) and sha256_file(file) != expected:
                raise ArtifactError(f"model artifact {folder.name}: {name} does not match its recorded hash")
    return artifact
