"""Fusion of written stacks: bands joined, masks combined, grids checked."""

import os

import dask.array as da
import numpy as np
import pytest
import zarr
from affine import Affine
from rasterio.crs import CRS

from lithomap.grid import GridError, grid_to_dict
from lithomap.products.base import Georef
from lithomap.stack import fuse_stacks, open_stack


def write_stack(path, sensor, bands, array, origin=(500000.0, 7000000.0)):
    """A stack folder as `build_stack` leaves it: Zarr plus attributes."""
    grid = Georef(CRS.from_epsg(32754),
                  Affine(30.0, 0, origin[0], 0, -30.0, origin[1]),
                  array.shape[2], array.shape[1])
    da.to_zarr(da.from_array(array, chunks=(len(bands), 8, 8)), str(path))
    zarr.open_array(str(path), mode="r+").attrs.update({
        "sensor": sensor, "bands": bands, "grid": grid_to_dict(grid),
        "scenes": [{"scene_id": f"{sensor}-scene", "path": "x"}],
        "n_pixels": grid.width * grid.height,
        "n_usable": int((~np.isnan(array).any(axis=0)).sum())})
    return str(path)


@pytest.fixture
def two_stacks(tmp_path):
    rng = np.random.default_rng(3)
    s2 = rng.uniform(0, 1, (3, 20, 16)).astype(np.float32)
    landsat = rng.uniform(0, 1, (2, 20, 16)).astype(np.float32)
    s2[:, :4, :] = np.nan          # cloud in one sensor only
    landsat[1, 10, 10] = np.nan    # one band masked in the other
    return (write_stack(tmp_path / "s2.zarr", "sentinel2",
                        ["B02", "B03", "B04"], s2),
            write_stack(tmp_path / "l8.zarr", "landsat",
                        ["SR_B2", "SR_B3"], landsat),
            s2, landsat)


def test_fused_stack_joins_bands_and_masks_where_any_sensor_does(
        two_stacks, tmp_path):
    s2_path, l8_path, s2, landsat = two_stacks
    out = str(tmp_path / "fused.zarr")
    summary = fuse_stacks([s2_path, l8_path], out, "regions.r.fusion")
    fused, grid, attrs = open_stack(out)
    values = fused.compute()
    assert attrs["bands"] == ["sentinel2:B02", "sentinel2:B03",
                              "sentinel2:B04", "landsat:SR_B2",
                              "landsat:SR_B3"]
    assert attrs["sensor"] == "fused"
    assert attrs["sources"] == ["sentinel2", "landsat"]
    assert [s["sensor"] for s in attrs["scenes"]] == ["sentinel2", "landsat"]
    masked = np.isnan(s2).any(axis=0) | np.isnan(landsat).any(axis=0)
    assert np.isnan(values).any(axis=0).tolist() == masked.tolist()
    assert np.isnan(values[:, masked]).all()
    np.testing.assert_array_equal(values[:3, ~masked], s2[:, ~masked])
    np.testing.assert_array_equal(values[3:, ~masked], landsat[:, ~masked])
    assert summary["n_usable"] == attrs["n_usable"] == (~masked).sum()
    assert (grid.width, grid.height) == (16, 20)
    assert not os.path.exists(out + ".part")


def test_stacks_on_different_grids_are_refused(two_stacks, tmp_path):
    s2_path, _, _, landsat = two_stacks
    shifted = write_stack(tmp_path / "shifted.zarr", "landsat",
                          ["SR_B2", "SR_B3"], landsat,
                          origin=(500030.0, 7000000.0))
    out = tmp_path / "fused.zarr"
    with pytest.raises(GridError, match="shifted.zarr: its grid differs"):
        fuse_stacks([s2_path, shifted], str(out), "regions.r.fusion")
    assert not out.exists()


def test_sensors_without_a_common_usable_pixel_are_refused(two_stacks,
                                                           tmp_path):
    s2_path, _, s2, landsat = two_stacks
    landsat = landsat.copy()
    landsat[:, 4:, :] = np.nan     # usable only where Sentinel-2 is cloudy
    disjoint = write_stack(tmp_path / "disjoint.zarr", "landsat",
                           ["SR_B2", "SR_B3"], landsat)
    out = tmp_path / "fused.zarr"
    with pytest.raises(GridError, match="regions.r.fusion: no pixel is "
                       "usable in every one of sentinel2, landsat"):
        fuse_stacks([s2_path, disjoint], str(out), "regions.r.fusion")
    assert not out.exists() and not (tmp_path / "fused.zarr.part").exists()
