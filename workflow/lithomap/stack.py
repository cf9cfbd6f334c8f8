"""The stack of one sensor in one region: every band on the region grid.

Written once as Zarr (chunked, compressed, safe for parallel writers), with
the grid, band names and scene list in its attributes, then read lazily by
every later stage.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import dask
import dask.array as da
import numpy as np
import zarr
from zarr.codecs import BloscCodec

from lithomap import grid as grids
from lithomap import progress
from lithomap.config import FUSED
from lithomap.grid import GridError, grid_from_dict, grid_to_dict
from lithomap.products import open_product, reader
from lithomap.products.base import Georef, ProductError

log = logging.getLogger(__name__)


def zarr_codecs() -> dict:
    """Compression of intermediate Zarr arrays: Blosc LZ4 with byte shuffle
    writes about four times faster than Zarr's default Zstandard, and
    reads as fast, at a cost of some disk."""
    return {"compressors": [BloscCodec(cname="lz4", clevel=5,
                                       shuffle="shuffle")]}


def region_grid(region: dict, key: str):
    """(grid, aoi) of a region's config; `key` names it in errors."""
    gcfg = region["grid"]
    crs = grids.parse_crs(gcfg["crs"], f"{key}.grid.crs")
    if not crs.is_projected:
        raise GridError(f"config key {key}.grid.crs: {gcfg['crs']} is not a "
                        "projected CRS; res_m needs metres (use a UTM zone)")
    aoi = grids.load_aoi(gcfg["aoi"], crs, f"{key}.grid.aoi")
    return grids.make_grid(crs, gcfg["res_m"], aoi), aoi


def open_scenes(region: dict, sensor: str) -> list:
    """Products of a region's scenes of `sensor`, with its bands and
    reader options."""
    bands = region.get("bands", {}).get(sensor) or reader(sensor).DEFAULT_BANDS
    defaults = region["settings"].get("sensors", {}).get(sensor, {})
    products = []
    for scene in region["scenes"]:
        if scene["sensor"] != sensor:
            continue
        options = {**defaults, **scene.get("options", {})}
        products.append(open_product(sensor, scene["path"], bands, **options))
    first = list(products[0].bands)
    for product in products[1:]:
        if list(product.bands) != first:
            raise ProductError(
                f"{product.path}: bands {list(product.bands)} differ from "
                f"{first} of {products[0].path}; scenes of one sensor are "
                "mosaicked and need the same bands (set them in the "
                "region's 'bands')")
    return products


def _check_overlap(products, grid: Georef, key: str) -> None:
    """Stop early when no band of any scene reaches the grid."""
    for product in products:
        band = next(iter(product.bands.values()))
        ref = band.raster.open_georef()
        if grids._source_window(ref, grid, pad=0) is not None:
            return
    raise GridError(
        f"config key {key}.grid.aoi: the area of interest {grid.bounds} "
        f"({grid.crs}) does not intersect any scene "
        f"({', '.join(p.path for p in products)}); check the bbox and CRS")


def build_stack(region: dict, sensor: str, out: str, key: str) -> dict:
    """Write the region's `sensor` stack to the Zarr folder `out`.

    Returns a summary: grid, bands, scenes, usable pixel count, seconds.
    """
    start = time.perf_counter()
    grid, aoi = region_grid(region, key)
    products = open_scenes(region, sensor)
    _check_overlap(products, grid, key)
    settings = region["settings"]
    stack = grids.lazy_stack(products, grid, aoi, settings["chunk_px"],
                             settings["resampling"])
    tmp, n_usable = _write_part(
        stack, out, f"{sensor} stack",
        if_empty=f"config key {key}: every pixel of the {sensor} stack is "
        "masked (cloud, fill, or outside the scenes); choose another AOI or "
        "scene, or relax the masks")
    summary = {
        "sensor": sensor,
        "bands": list(products[0].bands),
        "scenes": [{"scene_id": p.scene_id, "path": p.path,
                    "acquired": p.acquired.isoformat() if p.acquired else None,
                    "metadata": p.metadata} for p in products],
        "grid": grid_to_dict(grid),
        "n_pixels": grid.width * grid.height,
        "n_usable": n_usable,
        "seconds": round(time.perf_counter() - start, 3),
    }
    _publish(tmp, out, summary)
    return summary


def fuse_stacks(paths: list[str], out: str, key: str) -> dict:
    """Join the written stacks `paths` (one per sensor, on one grid) into
    the fused stack `out`, bands named "<sensor>:<band>".

    A pixel masked in any sensor is masked in every band. Returns the
    summary `build_stack` returns, with each scene's sensor and the
    ``sources`` sensors in order.
    """
    start = time.perf_counter()
    arrays, bands, scenes, sources = [], [], [], []
    first = None
    for path in paths:
        stack, _, attrs = open_stack(path)
        if first is None:
            first = attrs
        elif attrs["grid"] != first["grid"]:
            raise GridError(
                f"{path}: its grid differs from that of {paths[0]}; the "
                "stacks were made with different region grids. Delete "
                "both and run again")
        sources.append(attrs["sensor"])
        arrays.append(stack)
        bands += [f"{attrs['sensor']}:{b}" for b in attrs["bands"]]
        scenes += [{"sensor": attrs["sensor"], **scene}
                   for scene in attrs["scenes"]]
    fused = da.concatenate(arrays, axis=0).rechunk({0: -1})
    masked = da.isnan(fused).any(axis=0)
    fused = da.where(masked[None], np.float32(np.nan), fused)
    tmp, n_usable = _write_part(
        fused, out, "fused stack",
        if_empty=f"config key {key}: no pixel is usable in every one of "
        f"{', '.join(sources)} (they do not overlap once masked); map the "
        "sensors on their own, without fusion")
    summary = {
        "sensor": FUSED, "sources": sources, "bands": bands,
        "scenes": scenes, "grid": first["grid"],
        "n_pixels": first["n_pixels"], "n_usable": n_usable,
        "seconds": round(time.perf_counter() - start, 3),
    }
    _publish(tmp, out, summary)
    return summary


def _write_part(stack: da.Array, out: str, what: str,
                if_empty: str) -> tuple[str, int]:
    """Write `stack` to the Zarr folder `out`.part: (that path, number of
    pixels usable in every band). With no usable pixel, remove it and
    raise GridError(`if_empty`)."""
    usable = (~da.isnan(stack).any(axis=0)).sum()
    # Absolute: workers of a cluster may run in another folder.
    tmp = os.path.abspath(f"{out}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    store = da.to_zarr(stack, tmp, overwrite=True, compute=False,
                       **zarr_codecs())
    with progress.for_array(log, stack, what=what):
        _, n_usable = dask.compute(store, usable)
    if n_usable == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GridError(if_empty)
    return tmp, int(n_usable)


def _publish(tmp: str, out: str, summary: dict) -> None:
    """Give the written stack `tmp` its attributes and move it to `out`:
    a stack folder under its final name is always complete."""
    zarr.open_array(tmp, mode="r+").attrs.update(summary)
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(tmp, out)
    grid = summary["grid"]
    log.info("%s stack: %d x %d px, %d bands, %d usable (%.1f %%) in %.1f s",
             summary["sensor"], grid["height"], grid["width"],
             len(summary["bands"]), summary["n_usable"],
             100 * summary["n_usable"] / summary["n_pixels"],
             summary["seconds"])


def open_stack(path: str):
    """(dask array (band, y, x), grid, attributes) of a written stack."""
    arr = zarr.open_array(path, mode="r")
    attrs = dict(arr.attrs)
    return (da.from_zarr(os.path.abspath(path)), grid_from_dict(attrs["grid"]),
            attrs)


def write_json(path: str, data: dict) -> None:
    """Write `data` as JSON, complete or not at all."""
    tmp = f"{path}.part"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")
