"""The review score: a logistic regression over signals.FEATURES, exported to ONNX
(``model/review.onnx``, trained by ``train.py``; see MODEL.md) and run with onnxruntime."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import onnxruntime as ort

from services.verification.signals import HARD, REVIEW_ONLY

MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_PATH = MODEL_DIR / "review.onnx"
SEED_PATH = MODEL_DIR / "seed.csv"
INPUT, OUTPUT = "features", "probabilities"  # [N,len(FEATURES)] float32 -> [N,2] (P(0), P(1))

Decision = Literal["auto_approved", "needs_community", "rejected"]

_sessions: dict[Path, ort.InferenceSession] = {}
_lock = threading.Lock()


def active_path(data_dir: Path) -> Path:
    """The model the worker uses: one retrained for this node (``<data_dir>/models/review.onnx``,
    written by ``oneheart verification train``) if there is one, else the shipped model."""
    trained = data_dir / "models" / "review.onnx"
    return trained if trained.is_file() else MODEL_PATH


def load(path: Path = MODEL_PATH) -> ort.InferenceSession:
    """One session per model file per process (the model is tiny: one thread)."""
    session = _sessions.get(path)
    if session is None:
        with _lock:
            session = _sessions.get(path)
            if session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
                _sessions[path] = session
    return session


def infer(batch: np.ndarray, path: Path = MODEL_PATH) -> np.ndarray:
    """P(community accepts) for each row of a float32 [N, len(FEATURES)] batch (the bare model run)."""
    (probabilities,) = load(path).run([OUTPUT], {INPUT: batch})
    return np.asarray(probabilities[:, 1], dtype=np.float64)


def probabilities(rows: Iterable[Sequence[float]], path: Path = MODEL_PATH) -> np.ndarray:
    return infer(np.asarray(list(rows), dtype=np.float32).reshape(-1, _width(path)), path)


def score(features: Sequence[float], path: Path = MODEL_PATH) -> int:
    """Integrity score 0-100: round(100 * P(community accepts))."""
    return round(100 * float(probabilities([features], path)[0]))


def _width(path: Path) -> int:
    return int(load(path).get_inputs()[0].shape[1])


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    """A territory's decision thresholds on the score."""

    auto_approve_min: int = 80
    reject_max: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.reject_max < self.auto_approve_min <= 100:
            raise ValueError("need 0 <= reject_max < auto_approve_min <= 100")


DEFAULT_THRESHOLDS = Thresholds()


def decide(score: int, flags: Iterable[str], thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Decision:
    """auto_approved: score >= auto_approve_min and no review-only or hard flag.
    rejected: score <= reject_max and at least one hard flag (evidence against the proof);
    a low score from review-only or quality flags alone goes to the community instead.
    Everything else: needs_community."""
    raised = set(flags)
    if score <= thresholds.reject_max and raised & HARD:
        return "rejected"
    if score >= thresholds.auto_approve_min and not raised & (HARD | REVIEW_ONLY):
        return "auto_approved"
    return "needs_community"
