"""Real photographs for the evidence tests: scikit-image's sample photos, encoded as camera JPEGs."""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache

import numpy as np
from PIL import Image
from skimage import data as samples

PHOTOS = ("astronaut", "coffee", "rocket", "chelsea", "hubble_deep_field", "immunohistochemistry")


@cache
def pixels(name: str) -> np.ndarray:
    return np.asarray(getattr(samples, name)())


def jpeg(
    name: str,
    *,
    quality: int = 92,
    taken_at: datetime | None = None,
    scale: float = 1.0,
    crop: tuple[float, float, float, float] | None = None,
) -> bytes:
    """``name`` as a JPEG with camera EXIF (make, model, and DateTimeOriginal when given);
    ``crop`` keeps a part of it (left, top, right, bottom as fractions): another picture."""
    image = Image.fromarray(pixels(name)).convert("RGB")
    if crop is not None:
        w, h = image.size
        image = image.crop((round(crop[0] * w), round(crop[1] * h), round(crop[2] * w), round(crop[3] * h)))
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    exif = Image.Exif()
    exif[0x010F] = "Fairphone"  # Make
    exif[0x0110] = "FP5"  # Model
    if taken_at is not None:
        exif.get_ifd(0x8769)[0x9003] = taken_at.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal (local)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, exif=exif)
    return out.getvalue()
