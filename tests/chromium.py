"""Debian's Chromium, as the browser tests and docs/screenshots/take.py launch it through Playwright."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers run as root), no GPU, and none of the background traffic a
# first run starts: the browser talks only to the local test server.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_launch(playwright):
    """A Chromium browser from a running `sync_playwright()`."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
