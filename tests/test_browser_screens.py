"""Look at the pages as people see them, in Chromium: docs/screenshots/take.py builds the example
site at a fixed instant and visits, as a nurse, a specialist and an administrator, at 360 px and
1280 px, the dashboard, the case page with a result, the lesion and compare pages, the referral
queue, the review page and the Model page. These tests fail on

- a page that scrolls sideways, or text that runs out of its box;
- a heatmap layer that is not exactly over its photo (within 3 px), or that hides the photo;
- a page whose screenshot differs from its reference in docs/screenshots/ (unless the reference
  is updated in the same change: run ``.venv/bin/python docs/screenshots/take.py`` and commit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.chromium import CHROMIUM
from tests.inference_fixtures import service_missing

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
ROLES = {"clinic staff", "specialist", "administrator"}
PAGES_EVERY_ROLE = {"dashboard", "case-result", "lesion", "lesion-compare", "model"}
# A screenshot may differ from its reference by font rendering and antialiasing only: no 24 x 24
# pixel tile may change by more than this mean absolute difference (0-255), which a changed word,
# a moved box or a new colour all exceed.
TILE = 24
TILE_MEAN_MAX = 6.0
WHOLE_MEAN_MAX = 0.5


def screenshot_difference(reference: Path, candidate: Path) -> dict:
    """How two screenshots differ: same size?, the mean absolute difference, and the worst tile's."""
    with Image.open(reference) as a, Image.open(candidate) as b:
        if a.size != b.size:
            return {"same_size": False, "sizes": (a.size, b.size), "mean": None, "worst_tile": None}
        x = np.asarray(a.convert("RGB"), dtype=np.float32)
        y = np.asarray(b.convert("RGB"), dtype=np.float32)
    difference = np.abs(x - y).mean(axis=2)
    height, width = difference.shape
    padded = np.zeros((-(-height // TILE) * TILE, -(-width // TILE) * TILE), np.float32)
    padded[:height, :width] = difference
    tiles = padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE).mean(axis=(1, 3))
    worst = np.unravel_index(int(tiles.argmax()), tiles.shape)
    return {
        "same_size": True,
        "mean": float(difference.mean()),
        "worst_tile": float(tiles.max()),
        "worst_at": (int(worst[1]) * TILE, int(worst[0]) * TILE),
    }


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The screenshots and the layout findings of one run of docs/screenshots/take.py."""
    if not CHROMIUM.exists():
        service_missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    out = tmp_path_factory.mktemp("screens")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, str(SCREENSHOTS / "take.py"), "--out", str(out), "--layout-report", str(out / "layout.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return out, json.loads((out / "layout.json").read_text())["visits"]


def test_every_role_saw_every_page_at_both_widths(screens):
    _out, visits = screens
    seen = {(visit["role"], visit["page"], visit["width"]) for visit in visits}
    for role in ROLES:
        for page in PAGES_EVERY_ROLE:
            for width in (360, 1280):
                assert (role, page, width) in seen
    for role in ("specialist", "administrator"):
        assert {(role, "queue", 360), (role, "review", 1280)} <= seen


def test_no_page_scrolls_sideways_or_lets_text_out_of_its_box(screens):
    _out, visits = screens
    problems = [
        f"{visit['role']}, {visit['page']}, {visit['width']} px: {problem['kind']}: {problem['detail']}"
        for visit in visits
        for problem in visit["problems"]
        if not problem["kind"].startswith(("heatmap", "photo"))
    ]
    assert problems == []


def test_the_heatmap_lies_over_the_photo_and_the_photo_stays_visible(screens):
    _out, visits = screens
    with_heatmaps = [visit for visit in visits if visit["page"] in ("case-result", "review", "lesion-compare")]
    assert with_heatmaps and all(visit["viewers"] >= 2 for visit in with_heatmaps)  # both photos of the case
    problems = [
        f"{visit['role']}, {visit['page']}, {visit['width']} px: {problem['kind']}: {problem['detail']}"
        for visit in visits
        for problem in visit["problems"]
        if problem["kind"].startswith(("heatmap", "photo"))
    ]
    assert problems == []


def test_the_screenshots_match_their_references(screens):
    out, _visits = screens
    taken = sorted(out.glob("*.png"))
    references = sorted(SCREENSHOTS.glob("*.png"))
    assert [path.name for path in taken] == [path.name for path in references]
    changed = {}
    for path in taken:
        difference = screenshot_difference(SCREENSHOTS / path.name, path)
        if (
            not difference["same_size"]
            or difference["worst_tile"] > TILE_MEAN_MAX
            or difference["mean"] > WHOLE_MEAN_MAX
        ):
            changed[path.name] = difference
    assert not changed, (
        f"these pages changed: {changed}. If the change is meant, run "
        "`.venv/bin/python docs/screenshots/take.py` and commit the new screenshots."
    )


def test_the_difference_measure_sees_a_changed_word_and_ignores_nothing(tmp_path):
    base = Image.new("RGB", (200, 100), "white")
    base.save(tmp_path / "a.png")
    base.save(tmp_path / "same.png")
    changed = base.copy()
    changed.paste((20, 20, 20), (50, 40, 70, 52))  # a short word, 20 x 12 px
    changed.save(tmp_path / "b.png")
    Image.new("RGB", (200, 101), "white").save(tmp_path / "taller.png")

    assert screenshot_difference(tmp_path / "a.png", tmp_path / "same.png")["worst_tile"] == 0
    assert screenshot_difference(tmp_path / "a.png", tmp_path / "b.png")["worst_tile"] > TILE_MEAN_MAX
    assert screenshot_difference(tmp_path / "a.png", tmp_path / "taller.png")["same_size"] is False
