"""Downsampling long curves on the server, keeping their extremes.

A curve of n points is cut into equal buckets of consecutive points; each
bucket keeps its minimum and its maximum (in x order), and its first NaN if
it has one, so spikes, divergence and gaps all survive. A 100,000-point
curve comes out at about ``target`` points. Pure NumPy, no database access.
"""

from __future__ import annotations

import numpy as np

__all__ = ["minmax_indices", "downsample"]


def minmax_indices(y: np.ndarray, target: int = 2000) -> np.ndarray:
    """Return the sorted indices of ``y`` to keep so that about ``target`` remain.

    Args:
        y: The values (float64; NaN allowed, ±inf allowed).
        target: About how many points to keep. Default 2000. A curve with at
            most ``target`` points is kept whole.

    Returns:
        Ascending int64 indices into ``y``: per bucket the index of the
        minimum and of the maximum (NaN ignored), or of the first value when
        the bucket is all NaN, plus the first NaN of a bucket that has one.
        The first and last points are always kept.

    Raises:
        ValueError: ``target`` is below 4.
    """
    if target < 4:
        raise ValueError(f"target must be at least 4, not {target}.")
    n = len(y)
    if n <= target:
        return np.arange(n, dtype=np.int64)
    size = -(-n // (target // 2))  # ceil: about two points per bucket
    buckets = -(-n // size)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    grid = padded.reshape(buckets, size)
    nan = np.isnan(grid)
    base = np.arange(buckets, dtype=np.int64) * size
    low = np.where(nan, np.inf, grid).argmin(axis=1) + base
    high = np.where(nan, -np.inf, grid).argmax(axis=1) + base
    keep = [low, high, np.array([0, n - 1], dtype=np.int64)]
    has_nan = nan.any(axis=1)
    has_nan[-1] = nan[-1, : n - base[-1]].any()  # the padding of the last bucket is not data
    if has_nan.any():
        keep.append(nan[has_nan].argmax(axis=1) + base[has_nan])
    out = np.unique(np.concatenate(keep))
    return out[out < n]


def downsample(x: np.ndarray, y: np.ndarray, target: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)`` reduced to about ``target`` points by ``minmax_indices``.

    Raises:
        ValueError: ``x`` and ``y`` differ in length, or ``target`` is below 4.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} and {len(y)}).")
    keep = minmax_indices(np.asarray(y, dtype=np.float64), target)
    return np.asarray(x)[keep], np.asarray(y, dtype=np.float64)[keep]
