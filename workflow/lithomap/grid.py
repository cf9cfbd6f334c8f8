"""The region grid, and putting product bands onto it chunk by chunk.

A region's grid is a CRS, a pixel size and an area of interest (AOI). Its
upper-left corner is that of the AOI, so a bbox drawn on pixel edges of a
scene keeps the scene's pixels.

Bands are never read whole: `read_chunk` reads, for one window of the grid,
only the part of each source file that window needs, converts it to
reflectance at the source resolution, and resamples it onto the window.
`lazy_stack` lays those reads out as a Dask array, one task per chunk.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import dask.array as da
import numpy as np
from affine import Affine
from rasterio import features, warp, windows
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError

from lithomap.products.base import Georef, Product, RasterSource

log = logging.getLogger(__name__)


class GridError(ValueError):
    """The region's grid or area of interest cannot be built or used."""


@dataclass(frozen=True)
class AOI:
    """Area of interest: a bounding box, optionally with polygons."""

    bounds: tuple[float, float, float, float]
    """(left, bottom, right, top) in the grid CRS."""
    shapes: tuple = ()
    """Polygons (GeoJSON-like dicts in the grid CRS); empty: the whole box."""


def parse_crs(value: str, key: str) -> CRS:
    """CRS from a config string, with an error naming the config key."""
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise GridError(
            f"config key {key}: {value!r} is not a CRS rasterio knows "
            f"({exc}); write it as 'EPSG:32629' or a WKT string") from exc


def load_aoi(aoi_cfg: dict, crs: CRS, key: str) -> AOI:
    """AOI from config: ``{"bbox": [l, b, r, t]}`` or ``{"vector": path}``."""
    if "bbox" in aoi_cfg:
        left, bottom, right, top = aoi_cfg["bbox"]
        if not (left < right and bottom < top):
            raise GridError(
                f"config key {key}.bbox: {aoi_cfg['bbox']} is not "
                "[left, bottom, right, top] with left < right, bottom < top")
        return AOI((left, bottom, right, top))
    import geopandas as gpd

    path = aoi_cfg["vector"]
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types
        raise GridError(f"config key {key}.vector: cannot read {path} "
                        f"({exc})") from exc
    if frame.crs is None:
        raise GridError(f"{path}: the AOI file has no CRS; set one (for "
                        "example with ogr2ogr -a_srs) and run again")
    frame = frame.to_crs(crs)
    geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
    if not geoms:
        raise GridError(f"{path}: the AOI file holds no geometry")
    shapes = tuple(g.__geo_interface__ for g in geoms)
    return AOI(tuple(frame.total_bounds), shapes)


def make_grid(crs: CRS, res_m: float, aoi: AOI) -> Georef:
    """Grid covering `aoi` with pixels of `res_m`.

    The grid's upper-left corner is the AOI's, so a bbox drawn on a scene's
    pixel edges keeps them; width and height round up to whole pixels.
    """
    left, bottom, right, top = aoi.bounds
    width = math.ceil((right - left) / res_m - 1e-9)
    height = math.ceil((top - bottom) / res_m - 1e-9)
    transform = Affine(res_m, 0, left, 0, -res_m, top)
    return Georef(crs, transform, width, height)


def grid_to_dict(grid: Georef) -> dict:
    """JSON-able form of a grid; `grid_from_dict` reads it back."""
    return {"crs": grid.crs.to_wkt(), "epsg": grid.crs.to_epsg(),
            "transform": list(grid.transform)[:6], "width": grid.width,
            "height": grid.height}


def grid_from_dict(grid: dict) -> Georef:
    """`Georef` from ``{crs, transform: [a, b, c, d, e, f], width, height}``.

    `transform` lists the first six coefficients of the affine transform,
    in the order of ``affine.Affine`` (and ``rasterio``).
    """
    if isinstance(grid, Georef):
        return grid
    try:
        crs = CRS.from_user_input(grid["crs"])
        transform = Affine(*[float(v) for v in grid["transform"][:6]])
        return Georef(crs, transform, int(grid["width"]),
                      int(grid["height"]))
    except (KeyError, TypeError, ValueError, CRSError) as exc:
        raise GridError(
            f"grid: expected {{crs, transform: [a, b, c, d, e, f], width, "
            f"height}}. Received: {grid!r} ({exc})") from exc


def chunk_windows(grid: Georef, chunk_px: int):
    """Row and column chunk sizes of `grid` split into `chunk_px` squares."""
    def split(n):
        full, rest = divmod(n, chunk_px)
        return (chunk_px,) * full + ((rest,) if rest else ())
    return split(grid.height), split(grid.width)


def _source_window(src: Georef, dst: Georef, pad: int):
    """Window of `src` that covers `dst`, padded, or None if disjoint."""
    bounds = warp.transform_bounds(dst.crs, src.crs, *dst.bounds,
                                   densify_pts=21)
    win = windows.from_bounds(*bounds, transform=src.transform)
    col0 = max(math.floor(win.col_off) - pad, 0)
    row0 = max(math.floor(win.row_off) - pad, 0)
    col1 = min(math.ceil(win.col_off + win.width) + pad, src.width)
    row1 = min(math.ceil(win.row_off + win.height) + pad, src.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return windows.Window(col0, row0, col1 - col0, row1 - row0)


def pick_resampling(src: Georef, dst: Georef, method: str,
                    is_mask: bool) -> Resampling:
    """Resampling for one source: `method`, or by resolution when "auto".

    Reflectance is averaged when the grid is coarser than the source and
    interpolated bilinearly otherwise. A mask takes the maximum of the
    unusable flags when the grid is coarser (any masked source pixel masks
    the grid pixel) and the nearest flag otherwise.
    """
    coarser = dst.res > src.res * 1.001 if src.crs == dst.crs else True
    if is_mask:
        return Resampling.max if coarser else Resampling.nearest
    if method == "auto":
        return Resampling.average if coarser else Resampling.bilinear
    return Resampling[method]


def warp_window(raster: RasterSource, src: Georef, dst: Georef, prepare,
                resampling: Resampling, fast: bool = True) -> np.ndarray:
    """Read the part of `raster` under `dst`, `prepare` it, warp onto `dst`.

    `prepare` maps raw values to float32 with NaN where nothing is known.
    Where the source does not reach, the result is NaN. When `dst` lies on
    the source's own pixel lattice (same CRS, a whole-number ratio of pixel
    sizes), the window is read directly and block-averaged (or block-maxed)
    in NumPy, which gives GDAL's result without its warping cost; `fast`
    False always goes through GDAL.
    """
    factor = _lattice_factor(src, dst, resampling) if fast else None
    if factor is not None:
        return _read_on_lattice(raster, src, dst, prepare, resampling,
                                factor)
    out = np.full((dst.height, dst.width), np.nan, dtype=np.float32)
    win = _source_window(src, dst, pad=2)
    if win is None:
        return out
    values = prepare(raster.read(win))
    warp.reproject(
        values, out,
        src_transform=windows.transform(win, src.transform), src_crs=src.crs,
        dst_transform=dst.transform, dst_crs=dst.crs,
        src_nodata=np.nan, dst_nodata=np.nan, resampling=resampling)
    return out


def _lattice_factor(src: Georef, dst: Georef, resampling) -> int | None:
    """Whole-number ratio of `dst` to `src` pixels when `dst` pixels are
    unions of `src` pixels (and the resampling allows a plain block
    reduction); else None."""
    s, d = src.transform, dst.transform
    if src.crs != dst.crs or s.b or s.d or d.b or d.d:
        return None
    if abs(s.a + s.e) > 1e-9 * s.a or abs(d.a + d.e) > 1e-9 * d.a:
        return None  # not square, north-up pixels
    ratio = d.a / s.a
    factor = round(ratio)
    if factor < 1 or abs(ratio - factor) > 1e-9:
        return None
    col, row = (d.c - s.c) / s.a, (s.f - d.f) / s.a
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    if factor > 1 and resampling not in (Resampling.average,
                                         Resampling.max):
        return None
    return factor


def _read_on_lattice(raster, src, dst, prepare, resampling, factor):
    s, d = src.transform, dst.transform
    col = round((d.c - s.c) / s.a)
    row = round((s.f - d.f) / s.a)
    win = windows.Window(col, row, dst.width * factor, dst.height * factor)
    values = prepare(raster.read(win))
    # Boundless reads fill outside the file with 0, which `prepare` may
    # take as a value: outside the source there is nothing.
    outside = np.ones(values.shape, bool)
    r0, c0 = max(-row, 0), max(-col, 0)
    r1 = min(src.height - row, values.shape[0])
    c1 = min(src.width - col, values.shape[1])
    if r1 > r0 and c1 > c0:
        outside[r0:r1, c0:c1] = False
    values[outside] = np.nan
    if factor == 1:
        return values
    blocks = values.reshape(dst.height, factor, dst.width, factor)
    known = ~np.isnan(blocks)
    count = known.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        if resampling == Resampling.max:
            out = np.where(known, blocks, -np.inf).max(axis=(1, 3))
        else:
            out = np.where(known, blocks, 0).sum(axis=(1, 3)) / count
    out = out.astype(np.float32)
    out[count == 0] = np.nan
    return out


def sub_grid(grid: Georef, window: windows.Window) -> Georef:
    """The part of `grid` under `window`, as a grid of its own."""
    return Georef(grid.crs, windows.transform(window, grid.transform),
                  int(window.width), int(window.height))


def read_product_chunk(product: Product, georefs: dict, dst: Georef,
                       resampling: str) -> np.ndarray:
    """Reflectance (band, y, x) of `product` on `dst`, NaN where unusable.

    A pixel is unusable where any band lacks a value or any quality mask
    flags it; then every band of that pixel is NaN.
    """
    out = np.empty((len(product.bands), dst.height, dst.width), np.float32)
    for i, band in enumerate(product.bands.values()):
        src = georefs[band.name]
        method = pick_resampling(src, dst, resampling, is_mask=False)
        out[i] = warp_window(band.raster, src, dst, band.reflectance, method)
    unusable = np.isnan(out).any(axis=0)
    for mask in product.masks:
        src = georefs[mask.name]
        method = pick_resampling(src, dst, resampling, is_mask=True)
        flags = warp_window(
            mask.raster, src, dst,
            lambda qa, m=mask: m.unusable(qa).astype(np.float32), method)
        unusable |= flags > 0
    out[:, unusable] = np.nan
    return out


def _aoi_inside(aoi: AOI, dst: Georef) -> np.ndarray | None:
    """True inside the AOI polygons on `dst`; None when the AOI is a box."""
    if not aoi.shapes:
        return None
    return features.geometry_mask(aoi.shapes, (dst.height, dst.width),
                                  dst.transform, invert=True)


def product_georefs(product: Product) -> dict:
    """Georeferencing of every band and mask source, opened once."""
    refs = {name: b.raster.open_georef() for name, b in product.bands.items()}
    refs.update({m.name: m.raster.open_georef() for m in product.masks})
    return refs


def _stack_block(products, georefs, grid, aoi, resampling, block_info=None):
    """One chunk of the stack: the first usable value of each pixel."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"][1:]
    dst = sub_grid(grid, windows.Window(c0, r0, c1 - c0, r1 - r0))
    nbands = len(products[0].bands)
    out = np.full((nbands, dst.height, dst.width), np.nan, np.float32)
    for product, refs in zip(products, georefs):
        todo = np.isnan(out[0])
        if not todo.any():
            break
        values = read_product_chunk(product, refs, dst, resampling)
        out[:, todo] = values[:, todo]
    inside = _aoi_inside(aoi, dst)
    if inside is not None:
        out[:, ~inside] = np.nan
    return out


def lazy_stack(products: list[Product], grid: Georef, aoi: AOI,
               chunk_px: int, resampling: str = "auto") -> da.Array:
    """Dask array (band, y, x) of float32 reflectance on `grid`.

    Scenes are mosaicked in the order given: each pixel takes its values
    from the first scene in which it is usable. NaN marks pixels that are
    unusable in every scene or outside the AOI.
    """
    georefs = [product_georefs(p) for p in products]
    nbands = len(products[0].bands)
    rows, cols = chunk_windows(grid, chunk_px)
    log.debug("stack of %d scene(s), %d band(s) on %d x %d px, chunks of %d",
              len(products), nbands, grid.height, grid.width, chunk_px)
    block = functools.partial(_stack_block, products, georefs, grid, aoi,
                              resampling)
    return da.map_blocks(
        block, chunks=((nbands,), rows, cols), dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32))
