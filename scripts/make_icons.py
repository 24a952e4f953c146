"""Draw the app's PNG icons from node/static/icon.svg's design (a white heart on a green
rounded square), with Pillow: ``.venv/bin/python scripts/make_icons.py``. The PNGs are
committed; run this again only when the design changes.

The heart is the SVG path ``M32 52 12 32a11 11 0 0 1 20-14 11 11 0 0 1 20 14Z`` (viewBox
0 0 64 64): two half circles (their radius grows to half the chord, as SVG does for an arc
too short for its radius) on two straight sides meeting at the bottom point.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

STATIC = Path(__file__).resolve().parent.parent / "node" / "static"
GREEN, WHITE = (11, 110, 79, 255), (255, 255, 255, 255)
SUPERSAMPLE = 4


def _half_circle(start: tuple[float, float], end: tuple[float, float], steps: int = 64) -> list[tuple[float, float]]:
    """Points of the SVG arc from start to end with sweep-flag 1 (clockwise on screen)."""
    cx, cy = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
    r = math.dist(start, end) / 2
    a0 = math.atan2(start[1] - cy, start[0] - cx)
    turns = [a0 + math.pi * i / steps for i in range(steps + 1)]
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in turns]


def heart() -> list[tuple[float, float]]:
    return [(32, 52), (12, 32), *_half_circle((12, 32), (32, 18))[1:], *_half_circle((32, 18), (52, 32))[1:]]


def icon(size: int, *, maskable: bool = False) -> Image.Image:
    big = size * SUPERSAMPLE
    scale = big / 64
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:  # full bleed: the platform cuts its own shape; the heart is inside the safe circle
        draw.rectangle((0, 0, big, big), fill=GREEN)
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=round(14 * scale), fill=GREEN)
    draw.polygon([(x * scale, y * scale) for x, y in heart()], fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    for name, size, maskable in (
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("icon-maskable-512.png", 512, True),
    ):
        icon(size, maskable=maskable).save(STATIC / name, optimize=True)
        print(STATIC / name)


if __name__ == "__main__":
    main()
