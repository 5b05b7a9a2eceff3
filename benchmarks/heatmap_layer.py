"""What writing a photo's heatmap layer costs, as stored now and as earlier versions stored it.

    .venv/bin/python -m benchmarks.heatmap_layer [--images 150]

For real HAM10000 photos (200x150) and the same photos enlarged to a 1600x1200 phone photo,
the served model's activation map is drawn as the layer the worker stores (an indexed PNG,
``inference.heatmap.overlay_layer_png``) and as the lossy WebP with alpha that earlier versions
stored; prints the median time and size of each.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from PIL import Image

from benchmarks.model_latency import HAM10000


def webp_layer(image: Image.Image, activation_map) -> bytes:
    """The layer as versions before the indexed PNG stored it (quality 70, effort 0)."""
    from inference.heatmap import overlay_layer

    buffer = io.BytesIO()
    overlay_layer(image, activation_map).save(buffer, format="WEBP", quality=70, alpha_quality=60, method=0)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--data", type=Path, default=HAM10000)
    args = parser.parse_args(argv)

    from inference.heatmap import overlay_layer_png
    from inference.predictor import get_predictor
    from inference.preprocessing import load_image

    predictor = get_predictor()
    files = sorted(args.data.glob("*.jpg"))
    photos = [load_image(file) for file in files[: args.images]]
    if not photos:
        raise SystemExit(f"no HAM10000 images in {args.data}")
    for label, images in (("200x150", photos), ("1600x1200", [p.resize((1600, 1200)) for p in photos[:40]])):
        maps = [predictor.predict_image(image).activation_map for image in images]
        for name, write in (("indexed PNG (stored)", overlay_layer_png), ("WebP (earlier versions)", webp_layer)):
            times, sizes = [], []
            for image, activation_map in zip(images, maps, strict=True):
                started = time.perf_counter()
                data = write(image, activation_map)
                times.append((time.perf_counter() - started) * 1000)
                sizes.append(len(data))
            print(
                f"{label:<10} {name:<24} n={len(images):<4} median {statistics.median(times):6.2f} ms   "
                f"{statistics.median(sizes) / 1024:5.1f} KB"
            )


if __name__ == "__main__":
    main()
