"""The evidence overlay drawn over the view of the photo the model saw (inference/heatmap.py)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from inference.heatmap import MAX_SIDE, overlay, overlay_png
from inference.preprocessing import canonical_view


def photo(width: int, height: int, colour=(120, 120, 120)) -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def test_overlay_covers_the_canonical_view_not_the_uploaded_frame():
    portrait = photo(300, 600)  # turned to landscape and cropped to 4:3, as for the model
    assert overlay(portrait, np.zeros((3, 3))).size == canonical_view(portrait).size == (400, 300)


def test_overlay_is_scaled_down_for_large_photos():
    assert max(overlay(photo(4000, 3000), np.ones((7, 7))).size) == MAX_SIDE


def test_evidence_is_coloured_where_the_map_is_high_and_the_photo_is_untouched_where_it_is_zero():
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[:, 2:] = 1.0  # evidence on the right half only
    result = np.asarray(overlay(photo(400, 300), cam)).astype(int)

    assert (result[:, :20] == 120).all()  # far left: the photo itself
    right = result[:, -20:]
    assert right[..., 0].mean() > 150 and right[..., 2].mean() < 100  # hot (red) on the right


def test_overlay_of_a_real_prediction_is_a_png(served_model):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (150, 200, 3), dtype=np.uint8))
    scores = served_model.predict_image(image)
    assert scores.activation_map is not None
    assert scores.activation_map.min() >= 0 and scores.activation_map.max() <= 1

    with Image.open(io.BytesIO(overlay_png(image, scores.activation_map))) as decoded:
        assert decoded.format == "PNG" and decoded.size == (200, 150)


def test_layer_lies_over_the_whole_upright_photo_at_display_size():
    from inference.heatmap import overlay_layer

    assert overlay_layer(photo(1600, 1200), np.ones((7, 7))).size == (MAX_SIDE, 480)
    assert overlay_layer(photo(900, 1600), np.ones((7, 7))).size == (360, MAX_SIDE)  # portrait stays portrait
    assert overlay_layer(photo(200, 150), np.ones((7, 7))).size == (200, 150)  # never enlarged


def test_layer_is_transparent_outside_the_view_the_model_saw_and_where_there_is_no_evidence():
    from inference.heatmap import overlay_layer

    wide = overlay_layer(photo(600, 300), np.ones((4, 4)))  # the model saw the centre 400 x 300
    alpha = np.asarray(wide)[..., 3]
    assert (alpha[:, :95] == 0).all() and (alpha[:, -95:] == 0).all() and (alpha[:, 105:495] == 255).all()

    cam = np.zeros((4, 4), dtype=np.float32)
    cam[:2] = 1.0  # evidence in the top half of the portrait photo's canonical (turned) view
    tall = np.asarray(overlay_layer(photo(300, 400), cam))[..., 3]
    # canonical_view turned the portrait photo a quarter turn anticlockwise: its top is the photo's right side
    assert tall[:, -60:].mean() > 200 and tall[:, :60].mean() < 10


def test_stored_layer_is_a_small_indexed_png_that_draws_the_layer(served_model):
    from inference.heatmap import is_layer, overlay_layer, overlay_layer_png

    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (1200, 1600, 3), dtype=np.uint8))
    scores = served_model.predict_image(image)

    data = overlay_layer_png(image, scores.activation_map)

    assert len(data) < 40_000, len(data)
    assert is_layer(data)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "PNG" and decoded.mode == "P" and decoded.size == (MAX_SIDE, 480)
        stored = np.asarray(decoded.convert("RGBA"), dtype=np.int16)
    drawn = np.asarray(overlay_layer(image, scores.activation_map), dtype=np.int16)
    # 64 levels: the opacity within 2/255 of the drawn layer, the colour within one step of the ramp
    assert np.abs(stored[..., 3] - drawn[..., 3]).max() <= 2
    visible = drawn[..., 3] > 0
    assert (stored[..., 3][~visible] == 0).all()
    assert np.abs(stored[..., :3][visible] - drawn[..., :3][visible]).max() <= 12


def test_a_layer_is_told_from_a_blended_heatmap_by_its_bytes():
    from inference.heatmap import is_layer, overlay_layer

    photo_ = photo(200, 150)
    cam = np.ones((7, 7), dtype=np.float32)
    blended, webp = io.BytesIO(), io.BytesIO()
    overlay(photo_, cam).save(blended, format="PNG")
    overlay_layer(photo_, cam).save(webp, format="WEBP")

    assert not is_layer(blended.getvalue())  # the first version's heatmap: the photo with the map in it
    assert is_layer(webp.getvalue())  # the layer as earlier versions stored it
    assert not is_layer(b"not an image")
    opaque_indexed = io.BytesIO()
    overlay(photo_, cam).convert("P").save(opaque_indexed, format="PNG")  # indexed, but no opacities
    assert not is_layer(opaque_indexed.getvalue())
    assert not is_layer(opaque_indexed.getvalue()[:40])  # cut short
