"""Region grid: alignment, resampling, masks and AOI clipping, on tiny
rasters written into tmp_path with a known CRS and transform."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from lithomap import grid as grids
from lithomap.grid import AOI, GridError
from lithomap.products.base import (BandSource, Georef, MaskSource, Product,
                                    RasterSource)

UTM = CRS.from_epsg(32629)
ORIGIN = (300000.0, 2700000.0)


def write(path, array, res=10.0, nodata=0):
    t = Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1])
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1],
                       height=array.shape[0], count=1, dtype=array.dtype,
                       crs=UTM, transform=t, nodata=nodata) as dst:
        dst.write(array, 1)
    return str(path)


@pytest.fixture
def scene(tmp_path):
    """40x40 px at 10 m: a DN ramp, a fill block, and a 'cloud' QA block."""
    dn = (np.arange(1600, dtype=np.uint16).reshape(40, 40) + 100)
    dn[0:4, 0:4] = 0                      # fill
    qa = np.zeros((40, 40), np.uint8)
    qa[20:22, 30:32] = 9                  # cloud, a 2x2 block
    band = BandSource("B1", RasterSource(write(tmp_path / "b1.tif", dn)),
                      scale=1e-4, offset=0.0)
    mask = MaskSource("QA", RasterSource(write(tmp_path / "qa.tif", qa)),
                      "classes", (9,))
    return Product("test", str(tmp_path), "t", {"B1": band}, (mask,)), dn


def read(product, grid, resampling="auto"):
    return grids.read_product_chunk(product, grids.product_georefs(product),
                                    grid, resampling)


def test_make_grid_keeps_the_aoi_corner_and_rounds_up():
    grid = grids.make_grid(UTM, 30, AOI((1000, 2000, 1100, 2061)))
    assert grid.transform == Affine(30, 0, 1000, 0, -30, 2061)
    assert (grid.width, grid.height) == (4, 3)


def test_same_grid_reads_exact_values(scene):
    product, dn = scene
    grid = Georef(UTM, Affine(10, 0, ORIGIN[0] + 50, 0, -10, ORIGIN[1] - 30),
                  20, 10)   # offset by whole pixels: 5 columns, 3 rows
    out = read(product, grid)[0]
    np.testing.assert_allclose(out, dn[3:13, 5:25] * 1e-4, rtol=1e-6)


def test_coarser_grid_averages_and_any_masks(scene):
    """At 20 m each pixel is the mean of 2x2 source pixels; a pixel with any
    fill or flagged source pixel is masked."""
    product, dn = scene
    grid = Georef(UTM, Affine(20, 0, *ORIGIN[:1], 0, -20, ORIGIN[1]), 20, 20)
    out = read(product, grid)[0]
    expected = dn.reshape(20, 2, 20, 2).mean(axis=(1, 3)) * 1e-4
    masked = np.isnan(out)
    assert masked[0:2, 0:2].all()          # fill block
    assert masked[10, 15]                   # the cloud block
    assert masked.sum() == 4 + 1
    np.testing.assert_allclose(out[~masked], expected[~masked], rtol=1e-5)


def test_half_pixel_shift_straddles_cloud(scene):
    """A 20 m grid shifted by 10 m sees the 2x2 cloud in four pixels."""
    product, _ = scene
    grid = Georef(UTM, Affine(20, 0, ORIGIN[0] + 10, 0, -20,
                              ORIGIN[1] - 10), 18, 18)
    out = read(product, grid)[0]
    # cloud rows/cols 20-21, 30-31 -> shifted grid pixels 9-10, 14-15
    assert np.isnan(out[9:11, 14:16]).all()


def test_other_crs_lands_on_the_same_place(scene, tmp_path):
    """Reprojected to UTM 28N, the ramp's value at a point is unchanged."""
    product, dn = scene
    from rasterio.warp import transform as tf
    x, y = ORIGIN[0] + 255, ORIGIN[1] - 155     # centre of source px (15, 25)
    (x2,), (y2,) = tf(UTM, CRS.from_epsg(32628), [x], [y])
    grid = Georef(CRS.from_epsg(32628), Affine(10, 0, x2 - 5, 0, -10, y2 + 5),
                  1, 1)
    out = read(product, grid, "nearest")[0, 0, 0]
    assert out == pytest.approx(dn[15, 25] * 1e-4, rel=1e-6)


def test_lazy_stack_clips_to_aoi_polygon(scene):
    product, _ = scene
    grid = Georef(UTM, Affine(10, 0, *ORIGIN[:1], 0, -10, ORIGIN[1]), 40, 40)
    triangle = {"type": "Polygon", "coordinates": [[
        (ORIGIN[0], ORIGIN[1]), (ORIGIN[0] + 400, ORIGIN[1]),
        (ORIGIN[0], ORIGIN[1] - 400), (ORIGIN[0], ORIGIN[1])]]}
    aoi = AOI(grid.bounds, (triangle,))
    stack = grids.lazy_stack([product], grid, aoi, chunk_px=16).compute()
    assert np.isnan(stack[0, 39, 39])       # outside the triangle
    assert not np.isnan(stack[0, 5, 10])    # inside it
    assert np.isnan(stack[0, 25, 25])


def test_mosaic_fills_gaps_from_the_next_scene(scene, tmp_path):
    """The first scene's cloud is filled from the second scene."""
    product, dn = scene
    other = np.full((40, 40), 5000, np.uint16)
    b2 = BandSource("B1", RasterSource(write(tmp_path / "o.tif", other)),
                    scale=1e-4)
    second = Product("test", "o", "o", {"B1": b2})
    grid = Georef(UTM, Affine(10, 0, *ORIGIN[:1], 0, -10, ORIGIN[1]), 40, 40)
    stack = grids.lazy_stack([product, second], grid, AOI(grid.bounds),
                             chunk_px=16).compute()
    assert stack[0, 20, 30] == pytest.approx(0.5)   # from the second
    assert stack[0, 10, 10] == pytest.approx(dn[10, 10] * 1e-4)


def test_bad_aoi_vector(tmp_path):
    with pytest.raises(GridError, match=r"aoi\.vector: cannot read"):
        grids.load_aoi({"vector": str(tmp_path / "none.gpkg")}, UTM,
                       "regions.x.grid.aoi")


def test_bad_bbox():
    with pytest.raises(GridError, match=r"bbox: \[5, 0, 1, 1\] is not"):
        grids.load_aoi({"bbox": [5, 0, 1, 1]}, UTM, "regions.x.grid.aoi")


@pytest.mark.parametrize("res, dx, dy, resampling", [
    (10, 50, 30, "auto"), (20, 0, 0, "auto"), (30, 30, -60, "auto"),
    (20, -40, 20, "auto"), (10, -25, 0, "auto"), (20, 0, 0, "bilinear")],
    ids=["same-res", "2x", "3x-shifted", "2x-off-edge", "half-pixel",
         "2x-bilinear"])
def test_lattice_fast_path_equals_gdal(scene, res, dx, dy, resampling):
    """Reading on the source lattice in NumPy gives GDAL's warp result,
    masks included, also where the grid hangs off the scene."""
    product, _ = scene
    grid = Georef(UTM, Affine(res, 0, ORIGIN[0] + dx, 0, -res,
                              ORIGIN[1] + dy), 17, 15)
    refs = grids.product_georefs(product)
    for fast in (True, False):
        band = product.bands["B1"]
        method = grids.pick_resampling(refs["B1"], grid, resampling, False)
        got = grids.warp_window(band.raster, refs["B1"], grid,
                                band.reflectance, method, fast=fast)
        mask = product.masks[0]
        mmethod = grids.pick_resampling(refs["QA"], grid, resampling, True)
        flags = grids.warp_window(
            mask.raster, refs["QA"], grid,
            lambda qa: mask.unusable(qa).astype(np.float32), mmethod,
            fast=fast)
        if fast:
            fast_band, fast_flags = got, flags
    # GDAL smears the edge row into pixels wholly outside the source; the
    # fast path leaves them NaN. Everywhere else the two agree.
    cols = ORIGIN[0] + dx + res * np.arange(17)
    rows = ORIGIN[1] + dy - res * np.arange(15)
    inside = ((rows[:, None] <= ORIGIN[1]) & (rows[:, None] - res >= ORIGIN[1]
              - 400) & (cols[None] >= ORIGIN[0])
              & (cols[None] + res <= ORIGIN[0] + 400))
    disjoint = ((rows[:, None] - res >= ORIGIN[1])
                | (rows[:, None] <= ORIGIN[1] - 400)
                | (cols[None] + res <= ORIGIN[0])
                | (cols[None] >= ORIGIN[0] + 400))
    assert np.isnan(fast_band[disjoint]).all()
    np.testing.assert_allclose(fast_band[inside], got[inside], rtol=1e-6,
                               equal_nan=True)
    np.testing.assert_array_equal(fast_flags[inside], flags[inside])
