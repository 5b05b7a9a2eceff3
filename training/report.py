"""The evaluation report: metrics.json, report.md and PNG figures in one folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inference.preprocessing import CLASS_NAMES, CLASSES  # noqa: E402

PUBLISHED = {"accuracy": 0.62, "macro_f1": 0.53, "melanoma_recall": 0.70}


def plot_confusion(matrix: list[list[int]], path: Path) -> None:
    m = np.asarray(matrix, dtype=float)
    normalised = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}",
                ha="center",
                va="center",
                color="white" if normalised[i, j] > 0.5 else "black",
                fontsize=8,
            )
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(triage: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    curve = triage.get("roc_curve")
    if curve:
        ax.plot(curve["fpr"], curve["tpr"], label=f"P(malignant), AUC {triage['roc_auc']:.3f}")
    if triage.get("sensitivity") is not None:
        ax.plot(
            [1 - triage["specificity"]],
            [triage["sensitivity"]],
            "o",
            color="crimson",
            label=f"shipped thresholds: sens {triage['sensitivity']:.2f}, spec {triage['specificity']:.2f}",
        )
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("Malignant (mel, bcc, akiec) vs benign")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(calibration: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    bins = calibration["bins"]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(centres, [b["accuracy"] for b in bins], width=1 / 15, edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="crimson", markersize=3)
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram, ECE {calibration['ece']:.3f}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_classwise_reliability(classwise: dict, path: Path) -> None:
    """One reliability diagram per class (one-vs-rest): how often a photo given p is that class."""
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.2))
    for ax, name in zip(axes.flat, CLASSES, strict=False):
        row = classwise["per_class"][name]
        bins = [b for b in row["bins"]]
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
        ax.scatter(
            [b["confidence"] for b in bins],
            [b["frequency"] for b in bins],
            s=[max(6, min(120, b["count"])) for b in bins],
            color="crimson",
            alpha=0.8,
        )
        ax.plot([b["confidence"] for b in bins], [b["frequency"] for b in bins], color="crimson", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(
            f"{name}: ECE {row['ece']:.3f}\nmean p {row['mean_probability']:.3f}, prevalence {row['prevalence']:.3f}",
            fontsize=9,
        )
        ax.set_xlabel("predicted probability", fontsize=8)
        ax.set_ylabel("observed frequency", fontsize=8)
        ax.tick_params(labelsize=7)
    last = axes.flat[-1]
    last.axis("off")
    last.text(
        0.0,
        0.5,
        f"class-wise ECE (mean of 7): {classwise['ece']:.3f}\n"
        f"largest |mean p - prevalence|: {classwise['largest_prior_gap']:.3f}\n\n"
        "marker size: images in the bin",
        fontsize=9,
        va="center",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(run_dirs: list[Path], path: Path) -> bool:
    """Loss and accuracy per epoch over every stage of every run, stages separated by lines."""
    rows, boundaries = [], []
    for run_dir in run_dirs:
        for name in ("history-head.csv", "history-finetune.csv", "history-train.csv"):
            file = Path(run_dir) / name
            if file.exists():
                with file.open() as handle:
                    stage = list(csv.DictReader(handle))
                if stage:
                    if rows:
                        boundaries.append(len(rows) + 0.5)
                    rows += stage
    if not rows:
        return False
    epochs = np.arange(1, len(rows) + 1)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
        ax.plot(epochs, [float(r[key]) for r in rows], label=f"train {key}")
        ax.plot(epochs, [float(r[f"val_{key}"]) for r in rows], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        for boundary in boundaries:
            ax.axvline(boundary, color="grey", linestyle=":")
    loss_ax.set_title("loss")
    acc_ax.set_title("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(
    folder: Path,
    *,
    title: str,
    metrics: dict,
    run_dirs: list[Path] | None = None,
    context: dict | None = None,
    comparison: list[dict] | None = None,
) -> Path:
    """Write metrics.json, the PNG figures and report.md into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plot_confusion(metrics["confusion_matrix"], folder / "confusion_matrix.png")
    plot_roc(metrics["malignant_vs_benign"], folder / "roc_malignant.png")
    plot_reliability(metrics["calibration"], folder / "reliability.png")
    if metrics.get("classwise_calibration"):
        plot_classwise_reliability(metrics["classwise_calibration"], folder / "reliability_per_class.png")
    curves = bool(run_dirs) and plot_training_curves(run_dirs, folder / "training_curves.png")
    payload = {"title": title, "metrics": metrics, "context": context or {}, "comparison": comparison or []}
    (folder / "metrics.json").write_text(json.dumps(payload, indent=2) + "\n")
    (folder / "report.md").write_text(render_markdown(title, metrics, context or {}, comparison or [], curves))
    return folder


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render_markdown(title: str, metrics: dict, context: dict, comparison: list[dict], curves: bool) -> str:
    triage = metrics["malignant_vs_benign"]
    lines = [f"# {title}", ""]
    if context.get("description"):
        lines += [context["description"], ""]
    lines += [
        f"Evaluated on {metrics['images']} images"
        + (f" ({context['evaluated_on']})" if context.get("evaluated_on") else "")
        + ".",
        "",
        "| metric | value |",
        "| --- | ---: |",
        f"| accuracy (`balanced_class`) | {_pct(metrics['accuracy'])} |",
        f"| accuracy (`top_class`, the most likely class) | {_pct(metrics.get('top_class_accuracy'))} |",
        f"| balanced accuracy (`balanced_class`, mean per-class recall) | {_pct(metrics['balanced_accuracy'])} |",
        f"| macro F1 (`balanced_class`) | {_pct(metrics['macro_f1'])} |",
        f"| melanoma recall (`balanced_class`) | {_pct(metrics['per_class']['mel']['recall'])} |",
        f"| melanoma photos referred at the shipped thresholds | {_pct(triage.get('melanoma_referred'))} |",
        f"| malignant sensitivity at the shipped thresholds | {_pct(triage.get('sensitivity'))} |",
        f"| malignant specificity at the shipped thresholds | {_pct(triage.get('specificity'))} |",
        f"| malignant-vs-benign ROC AUC | {_pct(triage.get('roc_auc'))} |",
        f"| top-label expected calibration error (15 bins) | {_pct(metrics['calibration']['ece'])} |",
    ]
    classwise = metrics.get("classwise_calibration")
    if classwise:
        lines += [
            f"| class-wise ECE (mean of the seven one-vs-rest ECEs) | {_pct(classwise['ece'])} |",
            f"| largest gap between mean probability and prevalence | {_pct(classwise['largest_prior_gap'])} |",
        ]
    lines += [
        "",
        "## Per class",
        "",
        (
            "Precision, recall and F1 score `balanced_class` (the class the photo resembles most relative to "
            "how common it is); the probabilities are calibrated one class at a time."
        ),
        "",
        "| class | | precision | recall | F1 | support | mean probability | prevalence | ECE |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in CLASSES:
        row = metrics["per_class"][name]
        cal = (classwise or {}).get("per_class", {}).get(name, {})
        lines.append(
            f"| {name} | {CLASS_NAMES[name]} | {row['precision']:.3f} | {row['recall']:.3f} "
            f"| {row['f1']:.3f} | {row['support']} | {_pct(cal.get('mean_probability'))} "
            f"| {_pct(cal.get('prevalence'))} | {_pct(cal.get('ece'))} |"
        )
    lines += [
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "![ROC, malignant vs benign](roc_malignant.png) ![reliability diagram](reliability.png)",
        "",
    ]
    if classwise:
        lines += ["![reliability diagram per class](reliability_per_class.png)", ""]
    if curves:
        lines += ["![training curves](training_curves.png)", ""]
    if comparison:
        lines += [
            "## Architecture comparison (same split, same augmentation and class weights)",
            "",
            (
                "| model | input | parameters | weights (float32) | ms per image (Keras) | accuracy | balanced acc. "
                "| macro F1 | melanoma recall | malignant sens / spec | ECE |"
            ),
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
        ]
        for row in comparison:
            lines.append(
                f"| {row['model']} | {row['input']} | {row['parameters']:,} | {row['file_mb']:.1f} MB "
                f"| {row['ms_per_image']:.1f} | {row['accuracy']:.3f} | {row['balanced_accuracy']:.3f} "
                f"| {row['macro_f1']:.3f} | {row['melanoma_recall']:.3f} "
                f"| {_pct(row['malignant_sensitivity'])} / {_pct(row['malignant_specificity'])} | {row['ece']:.3f} |"
            )
        if context.get("served_ms"):
            lines += [
                "",
                (
                    f"Served by the portal with LiteRT ({context.get('served_threads', 1)} threads), MobileNetV2 takes "
                    f"{context['served_ms']:.1f} ms per image."
                ),
            ]
        lines += [
            "",
            (
                f"Published system for reference: accuracy {PUBLISHED['accuracy']}, "
                f"macro F1 {PUBLISHED['macro_f1']}, melanoma recall {PUBLISHED['melanoma_recall']} "
                "(LeNet-5 0.23, AlexNet 0.51, MobileNetV2 0.62 accuracy)."
            ),
            "",
        ]
    for heading, text in context.get("sections", {}).items():
        lines += [f"## {heading}", "", text, ""]
    return "\n".join(lines)
