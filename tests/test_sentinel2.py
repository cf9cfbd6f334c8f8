"""Sentinel-2 L2A reader, on the two real products in ../shared/data."""

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from conftest import S2_COG, S2_SAFE
from lithomap import grid as grids
from lithomap.products import ProductError, open_product
from lithomap.products.base import Georef
from lithomap.products.sentinel2 import DEFAULT_BANDS, SCL_UNUSABLE

SAFE_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"]


def native_grid(path, band_file):
    """The grid of one band file, as a lithomap grid."""
    with rasterio.open(path / band_file) as src:
        return Georef(src.crs, src.transform, src.width, src.height)


def read_native(product, grid):
    refs = grids.product_georefs(product)
    return grids.read_product_chunk(product, refs, grid, "auto")


def test_cog_reflectance_is_dn_over_10000_without_offset():
    """Baseline 02.14: no offset, reflectance = DN / 10000 exactly."""
    product = open_product("sentinel2", str(S2_COG))
    assert list(product.bands) == DEFAULT_BANDS
    assert product.metadata["processing_baseline"] == "02.14"
    with rasterio.open(S2_COG / "B04.tif") as src:
        dn = src.read(1, window=Window(500, 600, 3, 2))
    band = product.bands["B04"]
    raw = band.raster.read(Window(500, 600, 3, 2))
    np.testing.assert_array_equal(raw, dn)
    np.testing.assert_allclose(band.reflectance(raw), dn / 10000.0,
                               rtol=1e-6)


def test_safe_reflectance_applies_boa_add_offset():
    """Baseline 04.00: reflectance = (DN - 1000) / 10000, from the XML."""
    product = open_product("sentinel2", str(S2_SAFE), SAFE_BANDS)
    band = product.bands["B02"]
    assert band.raster.path.endswith("_B02_60m.jp2")
    assert band.offset == pytest.approx(-0.1)
    with rasterio.open(band.raster.path) as src:
        dn = src.read(1, window=Window(900, 900, 4, 4))
    assert (dn > 1000).all()
    got = band.reflectance(band.raster.read(Window(900, 900, 4, 4)))
    np.testing.assert_allclose(got, (dn.astype(float) - 1000) / 10000,
                               rtol=1e-6)


def test_safe_takes_finest_resolution_present():
    """The SCL comes from R20m (the finest present), bands from R60m."""
    product = open_product("sentinel2", str(S2_SAFE), SAFE_BANDS)
    assert product.masks[0].raster.path.endswith("_SCL_20m.jp2")
    assert all("_60m.jp2" in b.raster.path for b in product.bands.values())


def test_safe_lacks_b08_at_60m():
    """B08 exists only at 10 m, whose files are missing here."""
    with pytest.raises(ProductError, match=r"no band B08.*bands' list"):
        open_product("sentinel2", str(S2_SAFE), ["B02", "B08"])


def test_grid_reading_matches_direct_read_at_native_resolution():
    """On the band's own grid, chunk values equal DN / 10000 where usable."""
    product = open_product("sentinel2", str(S2_COG), ["B02", "B11"])
    grid = native_grid(S2_COG, "B11.tif")  # 200 m, the 20 m band's grid
    window = Window(100, 120, 64, 48)
    chunk = read_native(product, grids.sub_grid(grid, window))
    with rasterio.open(S2_COG / "B11.tif") as src:
        dn = src.read(1, window=window).astype(float)
    usable = ~np.isnan(chunk[1])
    assert usable.mean() > 0.9
    np.testing.assert_allclose(chunk[1][usable], dn[usable] / 1e4, rtol=1e-6)


def test_scl_mask_counts():
    """Pixels masked on the SCL grid = SCL classes 0,1,3,8,9,10 or DN 0."""
    product = open_product("sentinel2", str(S2_COG), ["B11", "B12"])
    grid = native_grid(S2_COG, "SCL.tif")
    stack = read_native(product, grid)
    with rasterio.open(S2_COG / "SCL.tif") as src:
        scl = src.read(1)
    with rasterio.open(S2_COG / "B11.tif") as a, \
            rasterio.open(S2_COG / "B12.tif") as b:
        zero = (a.read(1) == 0) | (b.read(1) == 0)
    expected = np.isin(scl, list(SCL_UNUSABLE)) | zero
    # SCL counts: 967 medium cloud + 837 high cloud + 10434 cirrus.
    assert expected.sum() == 967 + 837 + 10_434
    np.testing.assert_array_equal(np.isnan(stack[0]), expected)


def test_snow_is_masked_only_when_asked():
    product = open_product("sentinel2", str(S2_COG), mask_snow=True)
    assert 11 in product.masks[0].values
    product = open_product("sentinel2", str(S2_COG))
    assert 11 not in product.masks[0].values


def test_coarse_grid_masks_any_masked_pixel():
    """At 400 m, a pixel is masked if any of its 2x2 SCL pixels is."""
    product = open_product("sentinel2", str(S2_COG), ["B11"])
    scl_grid = native_grid(S2_COG, "SCL.tif")
    t = scl_grid.transform
    coarse = Georef(scl_grid.crs, t @ t.scale(2), 274, 274)
    stack = read_native(product, coarse)
    with rasterio.open(S2_COG / "SCL.tif") as src:
        scl = src.read(1)[:548, :548]
    bad = np.isin(scl, list(SCL_UNUSABLE)).reshape(274, 2, 274, 2)
    np.testing.assert_array_equal(np.isnan(stack[0]), bad.any(axis=(1, 3)))


@pytest.mark.parametrize("make, match", [
    (lambda tmp: tmp / "nowhere", "no such file or folder"),
    (lambda tmp: tmp, "not a Sentinel-2 L2A product"),
], ids=["missing-path", "empty-folder"])
def test_bad_product_paths(tmp_path, make, match):
    with pytest.raises(ProductError, match=match):
        open_product("sentinel2", str(make(tmp_path)))


def test_unknown_band_names_the_product_and_band():
    with pytest.raises(ProductError, match=r"S2A_29RKH.*no band B13"):
        open_product("sentinel2", str(S2_COG), ["B02", "B13"])


def test_broken_stac_item_names_the_file_and_the_json_error(tmp_path):
    (tmp_path / "B02.tif").symlink_to(S2_COG / "B02.tif")
    (tmp_path / "S2A_item.json").write_text('{"type": "Feature", "assets": ')
    with pytest.raises(ProductError,
                       match=r"S2A_item\.json: not valid JSON \(Expecting"):
        open_product("sentinel2", str(tmp_path))
