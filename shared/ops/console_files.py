"""The console's static files (served by the app itself: no CDN, works offline)."""

from __future__ import annotations

from pathlib import Path

CONSOLE_DIR = Path(__file__).with_name("console")
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def console_asset(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and type, or None; only the files that ship with the console can be read."""
    name = name.strip("/") or "index.html"
    allowed = {path.name: path for path in CONSOLE_DIR.iterdir() if path.suffix in TYPES}
    path = allowed.get(name)
    if path is None:
        return None
    return path.read_bytes(), TYPES[path.suffix]
