"""Categorical maps as Cloud Optimized GeoTIFFs, with palette and style.

The map is streamed chunk by chunk into a tiled temporary GeoTIFF, then
copied by GDAL's COG driver, which adds overviews resampled by the mode
(never averaging class codes). The final file appears under its name only
once complete.
"""

from __future__ import annotations

import colorsys
import logging
import os
import threading

import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from lithomap.products.base import Georef

log = logging.getLogger(__name__)

NODATA = 0


def palette(k: int) -> dict[int, tuple[int, int, int, int]]:
    """k distinct colours for classes 1..k, and transparent nodata (0).

    Hues step by the golden angle so that neighbouring class numbers get
    well separated colours; lightness alternates for more contrast.
    """
    colours = {NODATA: (0, 0, 0, 0)}
    for c in range(1, k + 1):
        hue = ((c - 1) * 0.381966) % 1.0
        light = (0.45, 0.62, 0.35)[(c - 1) % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
        colours[c] = (round(r * 255), round(g * 255), round(b * 255), 255)
    return colours


class _WindowWriter:
    """`da.store` target that writes blocks into an open rasterio dataset."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.lock = threading.Lock()

    def __setitem__(self, key, block):
        rows, cols = key
        window = Window(cols.start, rows.start, cols.stop - cols.start,
                        rows.stop - rows.start)
        with self.lock:
            self.dataset.write(block, 1, window=window)


def _profile(grid: Georef) -> dict:
    return dict(driver="GTiff", width=grid.width, height=grid.height,
                count=1, dtype="uint8", crs=grid.crs,
                transform=grid.transform, nodata=NODATA, tiled=True,
                blockxsize=512, blockysize=512, compress="deflate")


def write_map(labels: da.Array, grid: Georef, path: str, k: int,
              description: str = "cluster") -> None:
    """Compute `labels` (y, x) chunk by chunk and write it as a COG at
    `path`, with a colour table for classes 1..k and nodata 0."""
    tmp = f"{path}.part.tif"
    try:
        with rasterio.open(tmp, "w", **_profile(grid)) as dst:
            da.store(labels.astype(np.uint8), _WindowWriter(dst), lock=False)
        _to_cog(tmp, path, k, description)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    log.info("wrote %s (%d x %d px, %d classes)", path, grid.width,
             grid.height, k)


def _to_cog(src_path: str, path: str, k: int, description: str) -> None:
    """Copy a tiled GeoTIFF to a COG with mode overviews and a palette."""
    with rasterio.open(src_path, "r+") as src:
        src.write_colormap(1, palette(k))
        src.colorinterp = [ColorInterp.palette]
        src.set_band_description(1, description)
    part = f"{path}.part"
    rasterio.shutil.copy(src_path, part, driver="COG", compress="DEFLATE",
                         blocksize=512, overview_resampling="MODE",
                         resampling="NEAREST")
    os.replace(part, path)
