"""Majority filter: vectorised and chunked versions against brute force."""

import dask.array as da
import numpy as np
import pytest

from lithomap.smooth import majority, majority_dask


def brute_force(labels, window_px):
    """Mode of each window, pixel by pixel: nodata (0) does not vote and
    stays nodata; ties go to the pixel's own class, else the lowest."""
    h = window_px // 2
    padded = np.pad(labels, h)
    out = np.zeros_like(labels)
    for i in range(labels.shape[0]):
        for j in range(labels.shape[1]):
            if labels[i, j] == 0:
                continue
            win = padded[i:i + window_px, j:j + window_px]
            counts = np.bincount(win.ravel(), minlength=256)
            counts[0] = 0
            top = counts.max()
            if counts[labels[i, j]] == top:
                out[i, j] = labels[i, j]
            else:
                out[i, j] = np.flatnonzero(counts == top)[0]
    return out


@pytest.fixture
def noisy_map():
    """Blocky classes 1..5 with salt noise and a nodata hole."""
    rng = np.random.default_rng(42)
    base = np.repeat(np.repeat(rng.integers(1, 6, (6, 7)), 9, 0), 8, 1)
    noise = rng.random(base.shape) < 0.3
    base[noise] = rng.integers(1, 6, noise.sum())
    base[10:20, 30:45] = 0
    return base.astype(np.uint8)


@pytest.mark.parametrize("window_px", [3, 5, 7], ids=lambda w: f"w{w}")
def test_matches_brute_force(noisy_map, window_px):
    """The vectorised filter equals the pixel-by-pixel definition."""
    np.testing.assert_array_equal(majority(noisy_map, window_px),
                                  brute_force(noisy_map, window_px))


@pytest.mark.parametrize("chunks", [(13, 17), (20, 56), (7, 7)],
                         ids=["13x17", "20x56", "7x7"])
def test_chunked_equals_whole(noisy_map, chunks):
    """With a halo, chunk borders leave no trace."""
    whole = majority(noisy_map, 7)
    lazy = majority_dask(da.from_array(noisy_map, chunks=chunks), 7, 5)
    np.testing.assert_array_equal(lazy.compute(), whole)


def test_nodata_stays_and_does_not_vote():
    labels = np.array([[0, 0, 0], [0, 2, 0], [1, 1, 1]], np.uint8)
    out = majority(labels, 3)
    assert (out[labels == 0] == 0).all()
    # Centre sees three 1s and one 2 (zeros do not vote): it becomes 1.
    assert out[1, 1] == 1


def test_filter_removes_salt_noise(noisy_map):
    out = majority(noisy_map, 7)
    changes = lambda a: (np.diff(a, axis=1) != 0).sum()  # noqa: E731
    assert changes(out) < changes(noisy_map) / 3
