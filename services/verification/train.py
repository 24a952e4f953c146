"""Training of the review model (model.py): the documented seed dataset, the fit
(scikit-learn LogisticRegression), its ONNX export (skl2onnx) and a held-out evaluation.

scikit-learn and skl2onnx are imported here only: scoring needs onnxruntime alone.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.verification.model import INPUT, MODEL_PATH, SEED_PATH
from services.verification.signals import FEATURES, Signals, features

Row = tuple[list[float], int]

SEED = 20240601
SEED_ROWS = 3000
C = 1.0  # inverse L2 strength of the regression
TEST_FRACTION = 0.25

# The seed's "community accepts" rule: P(accept) = sigmoid(RULE_BIAS + sum(w * feature)).
# A documented prior (MODEL.md) until real community decisions replace it.
RULE_BIAS = 2.6
RULE_WEIGHTS = {
    "nsfw": -1.0,  # skin is not misconduct: communities mostly accept beach clean-ups
    "km_outside_log": -1.5,
    "no_location": -1.5,
    "duplicate_closeness": -5.0,
    "travel_excess": -1.8,
    "clock_skew_log": -1.2,
    "low_resolution": -0.8,
    "blurry": -1.0,
    "no_exif": -0.6,
    "poor_accuracy": -0.6,
}
assert tuple(RULE_WEIGHTS) == FEATURES


# --- the seed dataset ----------------------------------------------------------------------
def seed_signals(rng: np.random.Generator) -> Signals:
    """One synthetic proof: mostly honest, with each problem at a documented rate (MODEL.md)."""
    u = rng.random
    video = u() < 0.10
    nsfw = None if video else (float(rng.uniform(0.5, 1.0)) if u() < 0.10 else float(rng.beta(1, 30)))
    has_location = u() >= 0.06
    outside = None
    if has_location:
        r = u()
        outside = (
            0.0
            if r < 0.85
            else float(rng.exponential(300))
            if r < 0.95
            else float(rng.lognormal(math.log(20_000), 1.2))
        )
    accuracy = float(rng.uniform(100, 1000)) if u() < 0.08 else float(rng.lognormal(math.log(10), 0.6))
    distance = None
    if not video and u() < 0.70:
        r = u()
        distance = (
            int(rng.integers(0, 5)) if r < 0.07 else int(rng.integers(5, 15)) if r < 0.10 else int(rng.integers(18, 37))
        )
    travel_km = speed = None
    if u() < 0.60:
        r = u()
        travel_km = float(rng.uniform(1, 50))
        speed = (
            float(rng.uniform(1000, 20_000))
            if r < 0.03
            else float(rng.uniform(100, 600))
            if r < 0.08
            else float(min(rng.lognormal(math.log(15), 1.0), 99.0))
        )
    r = u()
    skew = (
        float(rng.uniform(86_400, 30 * 86_400))
        if r < 0.04
        else float(rng.uniform(3_600, 12 * 3_600))
        if r < 0.12
        else abs(float(rng.normal(0, 120)))
    )
    low = u() < 0.08
    short = int(rng.integers(200, 400)) if low else int(rng.integers(720, 4000))
    return Signals(
        kind="video" if video else "image",
        nsfw=nsfw,
        has_location=has_location,
        outside_zone_m=outside,
        gps_accuracy_m=accuracy if has_location else None,
        duplicate_distance=distance,
        travel_km=travel_km,
        travel_speed_kmh=speed,
        clock_skew_s=skew,
        width=None if video else int(short * 4 / 3),
        height=None if video else short,
        sharpness=None if video else (float(rng.uniform(5, 100)) if u() < 0.10 else float(rng.uniform(100, 3000))),
        has_exif=video or u() >= 0.15,
    )


def rule_probability(x: Sequence[float]) -> float:
    z = RULE_BIAS + sum(w * v for w, v in zip(RULE_WEIGHTS.values(), x, strict=True))
    return 1 / (1 + math.exp(-z))


def seed_rows(n: int = SEED_ROWS, seed: int = SEED) -> list[Row]:
    """The seed dataset: n synthetic proofs and a vote drawn from the documented rule.
    Deterministic for a given (n, seed); values rounded as they are written to seed.csv."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        x = [round(v, 4) for v in features(seed_signals(rng))]
        rows.append((x, int(rng.random() < rule_probability(x))))
    return rows


def write_csv(rows: Iterable[Row], path: Path) -> None:
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow([*FEATURES, "accepted"])
    out.writerows([*(repr(float(v)) for v in x), y] for x, y in rows)
    _write_atomic(path, text.getvalue().encode())


def read_csv(path: Path) -> list[Row]:
    """Rows of a CSV with the FEATURES columns (any order) and ``accepted`` (1/0)."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in (*FEATURES, "accepted") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        rows = []
        for line, rec in enumerate(reader, start=2):
            label = rec["accepted"].strip()
            if label not in ("0", "1"):
                raise ValueError(f"{path}:{line}: accepted must be 0 or 1, not {label!r}")
            rows.append(([float(rec[name]) for name in FEATURES], int(label)))
    return rows


# --- fit, export, evaluate ----------------------------------------------------------------
def fit(rows: Sequence[Row]) -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = _arrays(rows)
    if len(set(y.tolist())) < 2:
        raise ValueError("training needs both accepted and refused proofs")
    return LogisticRegression(C=C, max_iter=1000).fit(x, y)


def to_onnx(regression: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        regression,
        name="oneheart_review",
        initial_types=[(INPUT, FloatTensorType([None, len(FEATURES)]))],
        options={id(regression): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.doc_string = "P(community accepts a proof) from signals.FEATURES: " + ",".join(FEATURES)
    meta = onx.metadata_props.add()
    meta.key, meta.value = "features", ",".join(FEATURES)
    return bytes(onx.SerializeToString())


def train(rows: Sequence[Row]) -> bytes:
    """Fit on all rows; the ONNX model's bytes."""
    return to_onnx(fit(rows))


def write_model(onnx: bytes, path: Path = MODEL_PATH) -> None:
    _write_atomic(path, onnx)


@dataclass(frozen=True)
class Report:
    rows: int
    accepted: int
    test_rows: int
    accuracy: float  # on the held-out split, of a model fitted on the rest
    auc: float
    intercept: float  # of the model fitted on all rows (the one exported)
    weights: dict[str, float]


def evaluate(rows: Sequence[Row], test_fraction: float = TEST_FRACTION, seed: int = SEED) -> tuple[Report, Any]:
    """Held-out accuracy and AUC, and the model fitted on all rows (to export)."""
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    x, y = _arrays(rows)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    held = fit(list(zip(x_train.tolist(), y_train.tolist(), strict=True)))
    p = held.predict_proba(x_test)[:, 1]
    final = fit(rows)
    report = Report(
        rows=len(rows),
        accepted=int(y.sum()),
        test_rows=len(y_test),
        accuracy=float(accuracy_score(y_test, p >= 0.5)),
        auc=float(roc_auc_score(y_test, p)),
        intercept=float(final.intercept_[0]),
        weights=dict(zip(FEATURES, map(float, final.coef_[0]), strict=True)),
    )
    return report, final


def _arrays(rows: Sequence[Row]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray([r[0] for r in rows], dtype=np.float32).reshape(-1, len(FEATURES))
    y = np.asarray([r[1] for r in rows], dtype=np.int64)
    return x.astype(np.float64), y


def _write_atomic(path: Path, content: bytes) -> None:
    """Write beside ``path`` and rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_seed(path: Path = SEED_PATH) -> None:
    """Regenerate ``model/seed.csv`` (deterministic: the checked-in file is its output)."""
    write_csv(seed_rows(), path)
