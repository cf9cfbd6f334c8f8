"""Any multi-band GeoTIFF, with band names and scaling from config.

For stacks that no product reader knows: older Landsat 4-7 scenes
exported as one file (``../shared/data/landsat5_playa/Playa_Image.tif``),
mosaics, or products cut and stacked by other software. The file must
carry its own georeferencing. Nothing about the sensor is assumed: the
options say what the bands are called and how their values become
reflectance (``value * scale + offset``); there are no quality masks.

Options (the ``options`` of a scene with ``sensor: geotiff`` in config):

band_names : list of str, optional
    Name of each band of the file, in file order. Default: the file's band
    descriptions when every band has a distinct one, else "B1", "B2", ...
scale, offset : float or list of float, default 1.0 and 0.0
    Reflectance = value * scale + offset; one number for all bands, or one
    per band of the file.
nodata : float or list of float, optional
    Values that mean "no data". Default: the file's nodata value, or none.
valid_range : [min, max], optional
    Inclusive range of valid raw values; values outside it are masked.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from numbers import Real

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from lithomap.products.base import (BandSource, Georef, Product,
                                    ProductError, RasterSource,
                                    require_bands)

log = logging.getLogger(__name__)

DEFAULT_BANDS = None
"""Bands read when none are asked for: None means every band of the file."""


def open_product(path: str, bands: list[str] | None = None, *,
                 band_names: list[str] | None = None,
                 scale: float | list[float] = 1.0,
                 offset: float | list[float] = 0.0,
                 nodata: float | list[float] | None = None,
                 valid_range: list[float] | None = None) -> Product:
    """Open a multi-band GeoTIFF as a product.

    Parameters
    ----------
    path : str
        The GeoTIFF (any file GDAL reads that has a CRS).
    bands : list of str, optional
        Bands to read, by name, in order. Default: every band of the file.
    band_names : list of str, optional
        Name of each band of the file, in file order. Default: the file's
        band descriptions when all are set and distinct, else "B1", "B2"...
    scale : float or list of float, default 1.0
        Reflectance = value * scale + offset. One number, or one per band
        of the file.
    offset : float or list of float, default 0.0
        See `scale`.
    nodata : float or list of float, optional
        Raw values that mean "no data". Default: the file's nodata value;
        when the file has none, every value is data.
    valid_range : list of two floats, optional
        Inclusive [min, max] of valid raw values. Default: all are valid.

    Returns
    -------
    Product
        ``sensor`` "geotiff", ``scene_id`` the file name without extension,
        the bands asked for and no masks.

    Raises
    ------
    ProductError
        If the file cannot be opened or has no CRS, or an option does not
        fit the file.
    """
    ref, count, descriptions, file_nodata = _inspect(path)
    names = _band_names(path, band_names, count, descriptions)
    scales = _per_band(path, "scale", scale, count)
    offsets = _per_band(path, "offset", offset, count)
    fill = _nodata(path, nodata, file_nodata)
    valid = _valid_range(path, valid_range)

    wanted = list(names) if bands is None else list(bands)
    index = {name: i for i, name in enumerate(names)}
    require_bands(path, index, wanted)
    sources = {
        name: BandSource(name, RasterSource(path, index[name] + 1),
                         scale=scales[index[name]],
                         offset=offsets[index[name]], nodata=fill,
                         valid_range=valid)
        for name in wanted}
    log.info("%s: %d of %d band(s), %d x %d px of %g m, %s", path,
             len(sources), count, ref.width, ref.height, ref.res,
             ref.crs.to_string())
    return Product(
        sensor="geotiff", path=path,
        scene_id=os.path.splitext(os.path.basename(path))[0],
        bands=sources, masks=(),
        metadata={"band_names": list(names), "nodata": list(fill),
                  "valid_range": list(valid) if valid else None})


def _inspect(path: str):
    """Georef, band count, band descriptions and nodata of the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                ref = Georef(src.crs, src.transform, src.width, src.height)
                count, descriptions = src.count, src.descriptions
                file_nodata = src.nodata
    except RasterioIOError as exc:
        raise ProductError(f"{path}: cannot be opened as a raster "
                           f"({exc})") from exc
    if ref.crs is None:
        raise ProductError(
            f"{path}: the file has no CRS, and the geotiff reader takes "
            "georeferencing from the file only. Set it, for example with "
            "'gdal_edit.py -a_srs EPSG:32639 -a_ullr ...', or use the "
            "product's own reader")
    return ref, count, descriptions, file_nodata


def _band_names(path: str, band_names, count: int,
                descriptions) -> list[str]:
    """Name of each band of the file, from config or the file."""
    if band_names is None:
        if all(descriptions) and len(set(descriptions)) == count:
            log.debug("%s: band names from the file: %s", path,
                      ", ".join(descriptions))
            return list(descriptions)
        names = [f"B{i}" for i in range(1, count + 1)]
        log.debug("%s: no band names in config or file; using %s", path,
                  ", ".join(names))
        return names
    if isinstance(band_names, str) or len(band_names) != count:
        raise ProductError(
            f"{path}: option band_names: expected a list of {count} names, "
            f"one per band of the file. Received: {band_names!r}")
    if len(set(band_names)) != count:
        raise ProductError(f"{path}: option band_names names a band twice. "
                           f"Received: {band_names!r}")
    return [str(name) for name in band_names]


def _per_band(path: str, key: str, value, count: int) -> list[float]:
    """One float per band from a number or a list of `count` numbers."""
    values = [value] * count if isinstance(value, Real) else value
    if (isinstance(values, str) or not hasattr(values, "__len__")
            or len(values) != count
            or not all(isinstance(v, Real) and math.isfinite(v)
                       for v in values)):
        raise ProductError(
            f"{path}: option {key}: expected a number or a list of {count} "
            f"numbers (one per band). Received: {value!r}")
    return [float(v) for v in values]


def _nodata(path: str, nodata, file_nodata) -> tuple[float, ...]:
    """Fill values: the option's, else the file's, else none."""
    if nodata is None:
        if file_nodata is None:
            log.debug("%s: no nodata in config or file; every value is "
                      "data", path)
            return ()
        return (file_nodata,)
    values = [nodata] if isinstance(nodata, Real) else nodata
    if isinstance(values, str) or not all(isinstance(v, Real)
                                          for v in values):
        raise ProductError(f"{path}: option nodata: expected a number or a "
                           f"list of numbers. Received: {nodata!r}")
    return tuple(float(v) for v in values)


def _valid_range(path: str, valid_range):
    """(min, max) from the option, or None."""
    if valid_range is None:
        return None
    if (isinstance(valid_range, str) or len(valid_range) != 2
            or not all(isinstance(v, Real) for v in valid_range)
            or not valid_range[0] <= valid_range[1]):
        raise ProductError(
            f"{path}: option valid_range: expected [min, max] with min <= "
            f"max. Received: {valid_range!r}")
    return (float(valid_range[0]), float(valid_range[1]))
