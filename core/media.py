"""What an uploaded file really is: type sniffed from the bytes, size, sharpness, perceptual
hash and a small EXIF summary. Images are fully decoded, so a truncated file fails here."""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import imagehash
import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from core.errors import AppError

# A truncated image must fail, never decode as grey rows (this is Pillow's default; make it explicit).
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_ALLOWED = frozenset({"image/jpeg", "image/png", "image/webp", "video/mp4", "video/quicktime", "video/webm"})
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: more than any phone camera; a bomb beyond
# The decoded copy kept for the models: JPEG decodes straight to >= this size (DCT scaling).
WORK_SIZE = (256, 256)
# Sharpness and the perceptual hash are measured on a grey copy at most this long, so the
# blur threshold means the same for every camera resolution.
GREY_SIDE = 256

# Magika's MIME type -> the Pillow decoder allowed to read it (never let Pillow guess).
_PIL_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}
# EXIF orientation -> the turn that shows the picture upright (as ImageOps.exif_transpose).
_T = Image.Transpose
_ORIENTATION = {
    2: _T.FLIP_LEFT_RIGHT,
    3: _T.ROTATE_180,
    4: _T.FLIP_TOP_BOTTOM,
    5: _T.TRANSPOSE,
    6: _T.ROTATE_270,
    7: _T.TRANSVERSE,
    8: _T.ROTATE_90,
}
_SWAPS_SIDES = {_T.TRANSPOSE, _T.ROTATE_270, _T.TRANSVERSE, _T.ROTATE_90}
# Client spellings of the same type.
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "video/mov": "video/quicktime"}


class UnsupportedMedia(AppError):
    status, code = 415, "unsupported_media_type"


class CorruptMedia(AppError):
    status, code = 422, "corrupt_media"


@dataclass(frozen=True, slots=True)
class Media:
    mime: str  # sniffed from the bytes, never the client's word
    kind: Literal["image", "video"]
    width: int | None  # as displayed (EXIF orientation applied); None for video
    height: int | None
    sharpness: float | None  # variance of the Laplacian on the grey copy; None for video
    phash: str | None  # 16 hex digits (64-bit DCT hash); None for video
    exif: dict[str, Any]  # taken_at (ISO), lat, lng, gps_accuracy_m, make, model, software
    declared_mismatch: bool = False  # the client declared another type than the bytes are
    # A reduced RGB copy for the models (>= 256x256 when the photo is); not part of the summary.
    image: Image.Image | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable fields (everything but the decoded image)."""
        return {
            "mime": self.mime,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "sharpness": self.sharpness,
            "phash": self.phash,
            "exif": self.exif,
            "declared_mismatch": self.declared_mismatch,
        }


_magika: Any = None
_magika_lock = threading.Lock()


def magika() -> Any:
    """The process's one Magika instance (its ONNX model loads on first use, ~30 ms)."""
    global _magika
    if _magika is None:
        with _magika_lock:
            if _magika is None:
                import onnxruntime as ort
                from magika import Magika

                found = Magika()
                # Magika builds its session with onnxruntime's defaults: a thread per core that
                # spin-waits after each run and steals those cores from the NSFW model (both
                # ran 2-3x slower on 2 cores). The model is small: one thread, no spinning.
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                found._onnx_session = ort.InferenceSession(
                    str(found._model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
                _magika = found
    return _magika


def sniff(data: bytes) -> tuple[str, str]:
    """(label, MIME type) of ``data`` according to magika, e.g. ("jpeg", "image/jpeg")."""
    output = magika().identify_bytes(data).output
    return str(output.label), str(output.mime_type)


def inspect(
    data: bytes,
    declared_type: str | None = None,
    *,
    allowed: frozenset[str] = DEFAULT_ALLOWED,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Media:
    """Sniff, check and measure one evidence file. Raises UnsupportedMedia or CorruptMedia."""
    if not data:
        raise CorruptMedia("the file is empty (0 bytes)")
    label, mime = sniff(data)
    if mime not in allowed:
        raise UnsupportedMedia(f"the file's content is {label} ({mime}), not one of: {', '.join(sorted(allowed))}")
    declared = _ALIASES.get((declared_type or "").lower(), (declared_type or "").lower())
    mismatch = declared not in ("", "application/octet-stream") and declared != mime
    if mime.startswith("video/"):
        return Media(mime, "video", None, None, None, None, {}, mismatch)
    if mime not in _PIL_FORMATS:
        raise UnsupportedMedia(f"{mime} is allowed but cannot be decoded here")
    image, width, height, exif = _decode(data, _PIL_FORMATS[mime], max_pixels)
    grey = image.convert("L")
    if max(grey.size) > GREY_SIDE:
        grey.thumbnail((GREY_SIDE, GREY_SIDE), Image.Resampling.BILINEAR)
    return Media(
        mime=mime,
        kind="image",
        width=width,
        height=height,
        sharpness=laplacian_variance(np.asarray(grey, dtype=np.float32)),
        phash=str(imagehash.phash(grey)),
        exif=exif,
        declared_mismatch=mismatch,
        image=image,
    )


def decode(data: bytes, mime: str, max_pixels: int = DEFAULT_MAX_PIXELS, *, side: int = WORK_SIZE[0]) -> Image.Image:
    """A reduced RGB copy of an image ``inspect`` accepted, upright (EXIF orientation applied),
    whose shorter side stays at least ``side`` when the photo is that big: what the
    content-safety model sees (256, at upload or in the worker) or a thumbnail starts from."""
    if mime not in _PIL_FORMATS:
        raise UnsupportedMedia(f"{mime} is not an image this node can decode")
    return _decode(data, _PIL_FORMATS[mime], max_pixels, side)[0]


def _decode(
    data: bytes, fmt: str, max_pixels: int, side: int = WORK_SIZE[0]
) -> tuple[Image.Image, int, int, dict[str, Any]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = opened.size
        if width * height > max_pixels:
            raise CorruptMedia(f"the image is {width}x{height}, more than {max_pixels} pixels")
        exif_data = opened.getexif()
        if fmt == "JPEG":
            opened.draft("RGB", (side, side))  # decode at 1/2, 1/4 or 1/8 scale when that is still >= side
        opened.load()  # decodes every byte: truncated or damaged data raises here
    except CorruptMedia:
        raise
    except Image.DecompressionBombError as exc:
        raise CorruptMedia(f"the image has too many pixels ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptMedia(f"the image cannot be decoded: {exc}") from None
    image: Image.Image = opened
    factor = min(8, min(image.size) // side)
    if factor >= 2:  # other formats: the same reduction as JPEG's draft, after the full decode
        image = image.reduce(factor)
    if image.mode != "RGB":
        image = image.convert("RGB")
    turn = _ORIENTATION.get(exif_data.get(ExifTags.Base.Orientation, 1))
    if turn is not None:
        image = image.transpose(turn)
        if turn in _SWAPS_SIDES:
            width, height = height, width
    return image, width, height, exif_summary(exif_data)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low on blurred or out-of-focus pictures."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    centre = grey[1:-1, 1:-1]
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * centre
    return round(float(lap.var()), 2)


# --- EXIF ---------------------------------------------------------------------------------
_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 36867, 36881
_GPS_LAT_REF, _GPS_LAT, _GPS_LNG_REF, _GPS_LNG, _GPS_H_ERROR = 1, 2, 3, 4, 31


def exif_summary(exif: Image.Exif) -> dict[str, Any]:
    """taken_at, lat, lng, gps_accuracy_m, make, model, software: only those present and sane."""
    out: dict[str, Any] = {}
    try:
        sub = exif.get_ifd(_IFD_EXIF)
        gps = exif.get_ifd(_IFD_GPS)
    except Exception:  # a malformed IFD is "no EXIF", not a broken photo
        return out
    taken = _taken_at(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL))
    if taken:
        out["taken_at"] = taken
    lat = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), "S", 90)
    lng = _degrees(gps.get(_GPS_LNG), gps.get(_GPS_LNG_REF), "W", 180)
    if lat is not None and lng is not None:
        out["lat"], out["lng"] = lat, lng
        accuracy = _number(gps.get(_GPS_H_ERROR))
        if accuracy is not None and accuracy >= 0:
            out["gps_accuracy_m"] = round(accuracy, 1)
    for key, tag in (
        ("make", ExifTags.Base.Make),
        ("model", ExifTags.Base.Model),
        ("software", ExifTags.Base.Software),
    ):
        text = _text(exif.get(tag))
        if text:
            out[key] = text
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip()[:64] or None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if np.isfinite(number) else None


def _taken_at(value: Any, offset: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        taken = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset_text = _text(offset)
    if offset_text:
        try:
            taken = datetime.fromisoformat(taken.isoformat() + offset_text)
        except ValueError:
            pass
    return taken.isoformat()


def _degrees(value: Any, ref: Any, negative: str, limit: float) -> float | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    d, m, s = (_number(v) for v in value)
    if d is None or m is None or s is None:
        return None
    degrees = d + m / 60 + s / 3600
    if _text(ref) == negative:
        degrees = -degrees
    return round(degrees, 6) if abs(degrees) <= limit else None
