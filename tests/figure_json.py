"""Decode Plotly figure JSON (Plotly >= 6 writes arrays as base64 typed arrays)."""

from __future__ import annotations

import base64
import json

import numpy as np

DTYPES = {
    "f8": np.float64,
    "f4": np.float32,
    "i4": np.int32,
    "i8": np.int64,
    "i1": np.int8,
    "u1": np.uint8,
    "i2": np.int16,
    "u2": np.uint16,
    "u4": np.uint32,
}


def decode(value: object) -> np.ndarray:
    """A typed-array spec {dtype, bdata, shape} or a plain list, as a NumPy array."""
    if isinstance(value, dict) and "bdata" in value:
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=DTYPES[value["dtype"]])
        shape = value.get("shape")
        if shape:
            a = a.reshape([int(s) for s in str(shape).split(",")])
        return a
    return np.array(value, dtype=float)


def spec(fig_json: str) -> dict:
    return json.loads(fig_json)
