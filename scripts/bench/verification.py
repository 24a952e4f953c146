"""Verification benchmark: the whole analysis of one photo against the bare model runs in it.

Per photo (~200 KB JPEGs made from scikit-image's sample photos): ``media.inspect`` (magika,
decode, sharpness, pHash, EXIF) + NSFW + nearest duplicate among earlier proofs + signals,
features, score, flags, decision; against onnxruntime's ``session.run`` alone for the three
models (open_nsfw, the review model, magika), timed in the same iterations on the same
inputs. Prints per-photo medians and the ratio (goal <= 1.5x).

Run: ``.venv/bin/python scripts/bench/verification.py [--quick]`` (needs the dev extras:
scikit-image). No services needed.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core import media
from services.verification import model, safety, signals

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera")
TARGET_BYTES = 200_000
EARLIER = 500  # earlier proofs' hashes searched for a near duplicate


def sample_jpeg(name: str) -> bytes:
    """The photo at 1024 px on its long side, at the JPEG quality nearest ~200 KB."""
    from skimage import data

    pixels = getattr(data, name)()
    image = Image.fromarray(pixels[..., :3] if pixels.ndim == 3 else pixels).convert("RGB")
    scale = 1024 / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    best = b""
    for quality in range(60, 99, 2):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality)
        if not best or abs(buf.tell() - TARGET_BYTES) < abs(len(best) - TARGET_BYTES):
            best = buf.getvalue()
    return best


def magika_input(data: bytes) -> np.ndarray:
    """magika 1.0.3's model input for ``data`` (standard_v3_3: 1024 bytes from each end)."""
    beg = list(data[:4096].lstrip()[:1024])
    end = list(data[-4096:].rstrip()[-1024:])
    return np.asarray([beg + [256] * (1024 - len(beg)) + [256] * (1024 - len(end)) + end], dtype=np.int32)


def photo_of(found: media.Media) -> Image.Image:
    assert found.image is not None
    return found.image


def analyse(data: bytes, earlier: list[tuple[str, str]], now: datetime) -> str:
    """What the worker does with one photo, minus the I/O."""
    found = media.inspect(data, "image/jpeg")
    nsfw = safety.nsfw_probability(found.image) if found.image is not None else None
    nearest = signals.nearest_duplicate(found.phash, earlier) if found.phash else None
    outside = signals.geofence(55.6805, 12.5702, 55.6761, 12.5683, 300, 12)
    s = signals.Signals(
        nsfw=nsfw,
        outside_zone_m=outside,
        gps_accuracy_m=12,
        duplicate_of=nearest[0] if nearest else None,
        duplicate_distance=nearest[1] if nearest else None,
        travel_km=2.0,
        travel_speed_kmh=signals.travel_speed_kmh((55.70, 12.55), now - timedelta(hours=1), (55.68, 12.57), now),
        clock_skew_s=signals.clock_skew(now - timedelta(seconds=30), now, None),
        width=found.width,
        height=found.height,
        sharpness=found.sharpness,
        has_exif=bool(found.exif),
    )
    return model.decide(model.score(signals.features(s)), signals.flags(s))


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = 10 if quick else 40
    rng = np.random.default_rng(7)
    earlier = [(f"p{i}", f"{int(rng.integers(0, 2**63)):016x}") for i in range(EARLIER)]
    now = datetime.now(UTC)
    photos = {name: sample_jpeg(name) for name in PHOTOS}
    mg = media.magika()
    magika_session = mg._onnx_session  # magika's own session (private in 1.0.3, pinned)
    for data in photos.values():  # warm-up: loads the three sessions, first-run allocations
        analyse(data, earlier, now)

    print(f"{len(photos)} photos, {rounds} rounds each, {EARLIER} earlier hashes; medians per photo (ms)")
    print(f"{'photo':<18} {'KB':>4} {'size':>9} {'analysis':>9} {'inference':>9} {'ratio':>6}")
    ratios, totals, bares = [], [], []
    for name, data in photos.items():
        found = media.inspect(data)
        batch = safety.preprocess(photo_of(found)).copy()
        review_in = np.asarray([signals.features(signals.Signals(width=found.width, height=found.height))], np.float32)
        magika_in = magika_input(data)
        full, bare = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            analyse(data, earlier, now)
            t1 = time.perf_counter()
            safety.infer(batch)
            model.infer(review_in)
            magika_session.run(["target_label"], {"bytes": magika_in})
            t2 = time.perf_counter()
            full.append(t1 - t0)
            bare.append(t2 - t1)
        f, b = statistics.median(full) * 1000, statistics.median(bare) * 1000
        ratios.append(f / b)
        totals.append(f)
        bares.append(b)
        size = f"{found.width}x{found.height}"
        print(f"{name:<18} {len(data) // 1000:>4} {size:>9} {f:>9.2f} {b:>9.2f} {f / b:>5.2f}x")
    print(
        f"{'median':<18} {'':>4} {'':>9} {statistics.median(totals):>9.2f} {statistics.median(bares):>9.2f} "
        f"{statistics.median(ratios):>5.2f}x  (goal <= 1.5x)"
    )
    breakdown(photos["astronaut"], rounds)


def breakdown(data: bytes, rounds: int) -> None:
    """Where the time of one analysis goes (astronaut)."""
    image = photo_of(media.inspect(data))
    batch = safety.preprocess(image).copy()
    magika_in = magika_input(data)
    steps = {
        "magika identify_bytes": lambda: media.sniff(data),
        "magika session.run": lambda: media.magika()._onnx_session.run(["target_label"], {"bytes": magika_in}),
        "inspect (all)": lambda: media.inspect(data),
        "nsfw preprocess": lambda: safety.preprocess(image),
        "nsfw session.run": lambda: safety.infer(batch),
    }
    print("\nbreakdown, astronaut (ms, median):")
    for label, step in steps.items():
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        print(f"  {label:<24} {statistics.median(times) * 1000:7.2f}")


if __name__ == "__main__":
    main()
