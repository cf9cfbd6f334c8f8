"""Pixel sample: bounded, seeded, usable pixels only, chunking-proof."""

import dask.array as da
import numpy as np

from lithomap.sample import draw_sample


def make_stack(chunks):
    rng = np.random.default_rng(1)
    values = rng.random((3, 120, 90)).astype(np.float32)
    values[:, 50:70, :] = np.nan           # an unusable band of rows
    values[1, 10, 10] = np.nan              # one band missing in one pixel
    return values, da.from_array(values, chunks=chunks)


def test_sample_is_bounded_usable_and_seeded():
    values, stack = make_stack((3, 40, 30))
    x, index = draw_sample(stack, 500, seed=3)
    assert x.shape == (500, 3)
    assert not np.isnan(x).any()
    rows, cols = np.divmod(index, 90)
    np.testing.assert_array_equal(x, values[:, rows, cols].T)
    again, _ = draw_sample(stack, 500, seed=3)
    np.testing.assert_array_equal(x, again)
    other, _ = draw_sample(stack, 500, seed=4)
    assert not np.array_equal(x, other)


def test_sample_does_not_depend_on_chunks():
    _, a = make_stack((3, 40, 30))
    _, b = make_stack((3, 120, 90))
    np.testing.assert_array_equal(draw_sample(a, 700, 0)[1],
                                  draw_sample(b, 700, 0)[1])


def test_small_scene_gives_every_usable_pixel():
    values, stack = make_stack((3, 64, 64))
    usable = (~np.isnan(values).any(axis=0)).sum()
    x, index = draw_sample(stack, 10**6, seed=0)
    assert len(x) == usable == len(np.unique(index))
