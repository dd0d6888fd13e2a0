"""The single definition of RoPECustomer's semantics (docs/op-contract.md), in NumPy.

Every other implementation — the ONNX function in :mod:`rope_onnx.op.decomposition`, the host
build of the Ascend kernel, the checks in the tests — is compared against :func:`rope`.
"""

from __future__ import annotations

import numpy as np

from rope_onnx.op.contract import RopeAttributes


def rotate(xr: np.ndarray, interleaved: int) -> np.ndarray:
    """The partner channels with the sign of the rotation: rot(x) with y = x·cos + rot(x)·sin.

    interleaved=1 pairs (2i, 2i+1): rot[2i] = -x[2i+1], rot[2i+1] = x[2i].
    interleaved=0 pairs (i, i+R/2):  rot[:R/2] = -x[R/2:], rot[R/2:] = x[:R/2].
    """
    if interleaved:
        pairs = xr.reshape(*xr.shape[:-1], xr.shape[-1] // 2, 2)
        return np.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(xr.shape)
    half = xr.shape[-1] // 2
    return np.concatenate([-xr[..., half:], xr[..., :half]], axis=-1)


def rope(
    x: np.ndarray,
    cos: np.ndarray,
    sin: np.ndarray,
    interleaved: int = 1,
    rotary_dim: int = 0,
) -> np.ndarray:
    """y = RoPECustomer(x, cos, sin) with the given attributes.

    Arithmetic is done in float32 and rounded once to x's dtype, as the kernel does for
    float16/bfloat16.  cos and sin are full-width tables (last dim R) broadcasting against
    ``x[..., :R]`` by NumPy rules; channels R..D-1 pass through unchanged.
    """
    if x.ndim < 2:
        raise ValueError(f"x must have rank >= 2, got shape {x.shape}")
    rotary = RopeAttributes(interleaved, rotary_dim).resolved_rotary_dim(x.shape[-1])
    for name, table in (("cos", cos), ("sin", sin)):
        if table.shape[-1] != rotary:
            raise ValueError(f"{name} must have last dim rotary_dim={rotary}, got shape {table.shape}")
    xr = x[..., :rotary].astype(np.float32)
    yr = xr * cos.astype(np.float32) + rotate(xr, interleaved) * sin.astype(np.float32)
    if yr.shape != xr.shape:
        raise ValueError(f"cos/sin {cos.shape} broadcast x[..., :R] {xr.shape} to {yr.shape}")
    return np.concatenate([yr.astype(x.dtype), x[..., rotary:]], axis=-1)
