"""Tests of the generic stacked-GeoTIFF reader."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from lithomap import grid
from lithomap.products import open_product
from lithomap.products.base import ProductError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PLAYA = SHARED / "data" / "landsat5_playa" / "Playa_Image.tif"
PLAYA_LABELS = SHARED / "data" / "landsat5_playa" / "Playa_Training.tif"
TM_BANDS = ["TM1", "TM2", "TM3", "TM4", "TM5", "TM6", "TM7"]


def read_raw(path, index: int) -> np.ndarray:
    """One whole band of a file, as stored."""
    with rasterio.open(path) as src:
        return src.read(index)


@pytest.fixture
def small_stack(tmp_path):
    """A 3-band 6 x 8 uint16 GeoTIFF with band descriptions, nodata 9 and
    a nodata block in its upper-left corner."""
    path = tmp_path / "stack.tif"
    data = np.arange(3 * 6 * 8, dtype=np.uint16).reshape(3, 6, 8) + 100
    data[:, :2, :2] = 9
    profile = {"driver": "GTiff", "width": 8, "height": 6, "count": 3,
               "dtype": "uint16", "crs": "EPSG:32639", "nodata": 9,
               "transform": Affine(30, 0, 706260, 0, -30, 3496080)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(["blue", "red", "swir"], start=1):
            dst.set_band_description(i, name)
    return path


def test_playa_reflectance_is_scaled_raw_values():
    """Reflectance of the Landsat 5 stack is value * scale + offset, per
    band, at every pixel, and lands on its own grid unchanged."""
    scales = [1e-4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-3, 1e-4]
    product = open_product("geotiff", str(PLAYA), band_names=TM_BANDS,
                           scale=scales, offset=-0.01)
    assert list(product.bands) == TM_BANDS
    assert product.sensor == "geotiff"
    assert product.scene_id == "Playa_Image"
    ref = product.bands["TM1"].raster.open_georef()
    assert (ref.width, ref.height, ref.res) == (436, 433, 30.0)
    assert ref.crs.to_epsg() == 32639

    out = grid.read_product_chunk(product, grid.product_georefs(product),
                                  ref, "nearest")
    for i, name in enumerate(TM_BANDS):
        raw = read_raw(PLAYA, i + 1).astype(np.float64)
        np.testing.assert_allclose(out[i], raw * scales[i] - 0.01,
                                   rtol=1e-6, atol=1e-7, err_msg=name)


def test_subset_of_bands_in_asked_order():
    """Asked bands come back in the order asked, from the right layer."""
    product = open_product("geotiff", str(PLAYA), ["TM7", "TM3"],
                           band_names=TM_BANDS)
    assert list(product.bands) == ["TM7", "TM3"]
    assert product.bands["TM7"].raster.band_index == 7
    window = Window(100, 200, 3, 2)
    np.testing.assert_array_equal(
        product.bands["TM3"].raster.read(window),
        read_raw(PLAYA, 3)[200:202, 100:103])


def test_defaults_name_bands_b1_to_bn_and_mask_nothing():
    """Without options: names B1..B7, scale 1, no nodata, no masks."""
    product = open_product("geotiff", str(PLAYA))
    assert list(product.bands) == [f"B{i}" for i in range(1, 8)]
    band = product.bands["B4"]
    assert (band.scale, band.offset, band.nodata, band.valid_range) == \
        (1.0, 0.0, (), None)
    assert product.masks == ()
    assert band.reflectance(np.array([0, 5], np.uint16)).tolist() == \
        [0.0, 5.0]


def test_file_descriptions_and_nodata_are_used(small_stack):
    """Band names come from the file's descriptions, and its nodata masks."""
    product = open_product("geotiff", str(small_stack))
    assert list(product.bands) == ["blue", "red", "swir"]
    ref = product.bands["red"].raster.open_georef()
    out = grid.read_product_chunk(product, grid.product_georefs(product),
                                  ref, "nearest")
    assert np.isnan(out[:, :2, :2]).all()
    assert np.isfinite(out[:, 2:, :]).all()
    assert out[1, 5, 7] == 100 + 6 * 8 + 5 * 8 + 7


def test_config_nodata_and_valid_range_override(small_stack):
    """Config nodata replaces the file's; values outside valid_range go."""
    product = open_product("geotiff", str(small_stack), nodata=[100, 101],
                           valid_range=[0, 140])
    band = product.bands["blue"]
    got = band.reflectance(np.array([9, 100, 101, 102, 140, 141]))
    assert np.isnan(got).tolist() == [False, True, True, False, False, True]


@pytest.mark.parametrize(
    "options, message",
    [({"band_names": ["a", "b"]}, r"option band_names: expected a list of "
      r"7 names"),
     ({"band_names": ["a"] * 7}, r"option band_names names a band twice"),
     ({"scale": [1e-4] * 6}, r"option scale: expected a number or a list "
      r"of 7 numbers"),
     ({"offset": "0.1"}, r"option offset: expected a number"),
     ({"nodata": "zero"}, r"option nodata: expected a number"),
     ({"valid_range": [5, 1]}, r"option valid_range: expected \[min, max\]"),
     ],
    ids=["names-count", "names-twice", "scale-count", "offset-text",
         "nodata-text", "range-reversed"])
def test_options_that_do_not_fit_the_file_are_refused(options, message):
    """Each bad option stops with a message naming the file and option."""
    with pytest.raises(ProductError,
                       match=rf"{re.escape(str(PLAYA))}: {message}"):
        open_product("geotiff", str(PLAYA), **options)


def test_unknown_band_is_refused():
    """Asking for a band the names do not list names what exists."""
    with pytest.raises(ProductError, match=r"no band SWIR in this product; "
                       r"it has TM1, TM2"):
        open_product("geotiff", str(PLAYA), ["SWIR"], band_names=TM_BANDS)


def test_file_without_crs_is_refused():
    """The playa label raster has no georeferencing: a clear error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with pytest.raises(ProductError, match=r"Playa_Training\.tif: the "
                           r"file has no CRS.*gdal_edit\.py"):
            open_product("geotiff", str(PLAYA_LABELS))


def test_file_that_is_not_a_raster_is_refused(tmp_path):
    """A text file with a .tif name stops with 'cannot be opened'."""
    bogus = tmp_path / "bogus.tif"
    bogus.write_text("not a raster")
    with pytest.raises(ProductError, match=r"bogus\.tif: cannot be opened"):
        open_product("geotiff", str(bogus))
