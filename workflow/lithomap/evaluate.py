"""Scoring a cluster map against a reference geological map.

Three stages, each usable on its own:

1. **Reference on the grid** (`rasterize_reference`): the region's
   reference map, a raster (resampled with nearest neighbour) or polygons
   in any format GDAL reads (burnt in with the unit of each polygon), is put
   on the region grid once and written as a uint8/uint16 GeoTIFF whose tags
   carry the legend. Units given as names become integer codes.
2. **Counting** (`contingency`): the map and the gridded reference are read
   window by window and every pixel valid in both is counted in a units x
   clusters table with `numpy.bincount`; nothing of grid size is held in
   memory.
3. **Scores** (`evaluate_map`): clusters are matched to units one-to-one
   (Hungarian method) and many-to-one (each cluster to its majority unit);
   for each matching, the confusion matrix, overall accuracy, Cohen's kappa
   with its large-sample variance, producer's and user's accuracy and F1 per
   unit; independent of any matching, ARI, NMI, AMI, homogeneity,
   completeness and V-measure, all from the contingency table; optionally
   the accuracy at ground-truth points and internal scores of the features.

Tables are always ordered (reference unit, map cluster): rows are units.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio import features as rio_features
from rasterio import warp, windows
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError

from lithomap.grid import (
    chunk_windows,
    grid_from_dict,
    sub_grid,
    warp_window,
)
from lithomap.products.base import Georef, RasterSource

log = logging.getLogger(__name__)

KAPPA_VARIANCE_SOURCE = (
    "Congalton, R. G. and Green, K. (2009). Assessing the Accuracy of "
    "Remotely Sensed Data: Principles and Practices, 2nd ed. CRC Press. "
    "Large-sample (delta method) variance of kappa, after Bishop, Fienberg "
    "and Holland (1975).")
"""Where the variance formula of `kappa_with_variance` comes from."""

MATCHINGS = {
    "many_to_one": "majority: each cluster goes to the reference unit that "
                   "holds most of its pixels (several clusters may share "
                   "a unit)",
    "one_to_one": "Hungarian method (scipy.optimize.linear_sum_assignment) "
                  "on the contingency table, maximising agreeing pixels; "
                  "clusters left over when k exceeds the units are "
                  "'unmatched' and count as errors",
}
"""Cluster-to-unit matchings, by the name used in outputs."""

UNMATCHED = "unmatched"
"""Confusion column of pixels whose cluster has no unit."""

_TAG_LEGEND = "LITHOMAP_LEGEND"
_TAG_SOURCE = "LITHOMAP_REFERENCE_SOURCE"


class ReferenceMapError(ValueError):
    """A reference map, its legend or its points cannot be used."""


# --- the region grid --------------------------------------------------------

def _grid_windows(grid: Georef, window_px: int):
    """Windows tiling `grid` in squares of `window_px`, row by row."""
    rows, cols = chunk_windows(grid, window_px)
    row0 = 0
    for height in rows:
        col0 = 0
        for width in cols:
            yield windows.Window(col0, row0, width, height)
            col0 += width
        row0 += height


# --- legend -----------------------------------------------------------------

def read_legend(legend) -> dict[int, str]:
    """Unit names by code, from config.

    Parameters
    ----------
    legend : dict, path-like or None
        A mapping ``{code: name}`` (YAML may give codes as strings), or a
        CSV file with columns ``code`` and ``name``. None: no names.
    """
    if legend is None:
        return {}
    if isinstance(legend, dict):
        items = legend.items()
        where = "reference.legend"
    else:
        import pandas as pd

        try:
            frame = pd.read_csv(legend)
        except (OSError, ValueError) as exc:
            raise ReferenceMapError(
                f"reference.legend: cannot read {legend} as CSV "
                f"({exc})") from exc
        if not {"code", "name"} <= set(frame.columns):
            raise ReferenceMapError(
                f"{legend}: a legend CSV needs columns 'code' and 'name'; "
                f"it has {', '.join(map(str, frame.columns))}")
        items = zip(frame["code"], frame["name"])
        where = str(legend)
    out = {}
    for code, name in items:
        try:
            out[int(code)] = str(name)
        except (TypeError, ValueError):
            raise ReferenceMapError(
                f"{where}: legend codes must be integers. Received: "
                f"{code!r} (for {name!r})") from None
    return out


def reference_legend(path) -> dict[int, str]:
    """Legend stored in a reference written by `rasterize_reference`."""
    with rasterio.open(path) as src:
        text = src.tags().get(_TAG_LEGEND)
    if not text:
        return {}
    return {int(code): name for code, name in json.loads(text).items()}


# --- reference on the grid -------------------------------------------------

@dataclass(frozen=True)
class ReferenceSummary:
    """What `rasterize_reference` wrote."""

    path: str
    """The reference GeoTIFF on the region grid."""
    source: str
    """The reference map it was made from."""
    kind: str
    """"raster" or "vector"."""
    dtype: str
    """"uint8" or "uint16"."""
    nodata: int
    """Value of pixels without a unit (255 or 65535)."""
    legend: dict = field(default_factory=dict)
    """Unit names by code (empty when none was given or needed)."""
    unit_px: dict = field(default_factory=dict)
    """Pixels of each unit code on the grid."""


def rasterize_reference(ref_cfg: dict, grid, out_path,
                        window_px: int = 1024) -> ReferenceSummary:
    """Put a reference map on the region grid and write it as a GeoTIFF.

    Parameters
    ----------
    ref_cfg : dict
        The region's ``reference`` config: ``path`` (required), and
        ``unit_column`` (required for polygons), ``layer`` (polygons, default
        the first), ``band`` (raster, default 1), ``nodata`` (raster,
        overrides the file's), ``legend`` (see `read_legend`).
    grid : Georef or dict
        The region grid (a dict as `grid_from_dict` takes).
    out_path : path-like
        GeoTIFF to write: uint8 (nodata 255) when every code is below 255,
        else uint16 (nodata 65535); tiled, deflate-compressed; the legend
        and source path in its tags.
    window_px : int, default=1024
        Side of the square windows the grid is written in.

    Returns
    -------
    ReferenceSummary

    Raises
    ------
    ReferenceMapError
        The file cannot be read, has no CRS, lacks the unit column, holds
        codes that are not non-negative integers below 65535, or puts no
        unit on the grid.
    """
    grid = grid_from_dict(grid)
    path = _required(ref_cfg, "path", "reference")
    legend = read_legend(ref_cfg.get("legend"))
    kind = _reference_kind(path, ref_cfg)
    log.info("putting reference %s (%s) on the %d x %d grid", path, kind,
             grid.height, grid.width)
    if kind == "vector":
        unit_px, dtype, nodata, legend = _burn_vector(
            path, ref_cfg, grid, legend, out_path, window_px)
    else:
        unit_px, dtype, nodata = _warp_raster(
            path, ref_cfg, grid, legend, out_path, window_px)
    if not unit_px:
        os.remove(out_path)
        raise ReferenceMapError(
            f"{path}: the reference reaches the region but no unit falls on "
            "a pixel of its grid (every pixel is nodata); check "
            "reference.nodata and the region's bbox")
    log.info("reference on the grid: %d unit(s), %d px with a unit",
             len(unit_px), sum(unit_px.values()))
    return ReferenceSummary(str(out_path), str(path), kind, dtype, nodata,
                            legend, unit_px)


def _required(cfg: dict, key: str, where: str):
    """`cfg[key]`, or an error naming the missing config key."""
    value = (cfg or {}).get(key)
    if value in (None, ""):
        raise ReferenceMapError(f"config key {where}.{key} is required and "
                                "missing")
    return value


def _reference_kind(path, ref_cfg) -> str:
    """"vector" if OGR reads `path` as features, else "raster"."""
    import pyogrio

    if not str(path).startswith("/vsi") and not os.path.exists(path):
        raise ReferenceMapError(f"reference.path: {path} does not exist")
    try:
        pyogrio.read_info(path, layer=ref_cfg.get("layer"))
    except Exception:  # noqa: BLE001 (pyogrio raises several types)
        return "raster"
    return "vector"


def _check_overlap(path, src_crs, src_bounds, grid: Georef):
    """Stop unless `src_bounds` (in `src_crs`) and the grid overlap."""
    try:
        gl, gb, gr, gt = warp.transform_bounds(grid.crs, src_crs,
                                               *grid.bounds, densify_pts=21)
    except Exception as exc:  # PROJ errors surface as several types
        raise ReferenceMapError(
            f"{path}: cannot transform the region grid into the "
            f"reference's CRS ({exc})") from exc
    left, bottom, right, top = src_bounds
    if min(right, gr) <= max(left, gl) or min(top, gt) <= max(bottom, gb):
        raise ReferenceMapError(
            f"{path}: the reference (bounds {_fmt(src_bounds)} in "
            f"{src_crs.to_string()}) does not overlap the region grid "
            f"(bounds {_fmt((gl, gb, gr, gt))} in the same CRS); check the "
            "region's bbox or aoi and the reference's CRS")


def _fmt(bounds) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in bounds) + "]"


def _output_type(max_code: int, path) -> tuple[str, int]:
    """(dtype, nodata) of the gridded reference, from its largest code."""
    if max_code < 255:
        return "uint8", 255
    if max_code < 65535:
        return "uint16", 65535
    raise ReferenceMapError(
        f"{path}: unit code {max_code} is too large; codes must be integers "
        "0..65534 (recode the units, or give names and let lithomap number "
        "them)")


def _open_output(out_path, grid: Georef, dtype, nodata, legend, source):
    """Tiled GeoTIFF on `grid`, open for writing, legend in its tags."""
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    dst = rasterio.open(
        out_path, "w", driver="GTiff", width=grid.width, height=grid.height,
        count=1, dtype=dtype, nodata=nodata, crs=grid.crs,
        transform=grid.transform, tiled=True, blockxsize=256,
        blockysize=256, compress="deflate")
    dst.update_tags(**{
        _TAG_LEGEND: json.dumps({str(k): v for k, v in legend.items()}),
        _TAG_SOURCE: str(source)})
    dst.set_band_description(1, "reference units")
    return dst


def _count_units(values, nodata, counts: np.ndarray) -> None:
    """Add the pixels of each code in `values` (not `nodata`) to `counts`."""
    codes = values[values != nodata]
    counts += np.bincount(codes.ravel(), minlength=len(counts))[:len(counts)]


# raster references

def _warp_raster(path, ref_cfg, grid, legend, out_path, window_px):
    """Resample a raster reference onto `grid` (nearest); unit_px etc."""
    band = int(ref_cfg.get("band", 1))
    src_georef, nodata = _raster_georef(path, ref_cfg, band)
    _check_overlap(path, src_georef.crs, src_georef.bounds, grid)
    max_code = _scan_codes(path, band, src_georef, grid, nodata, window_px)
    dtype, fill = _output_type(max_code, path)
    log.debug("%s: band %d, nodata %s, largest code %d -> %s (nodata %d)",
              path, band, nodata, max_code, dtype, fill)

    def prepare(raw):
        out = raw.astype(np.float32)
        if nodata is not None:
            out[(raw == nodata) | np.isnan(out)] = np.nan
        return out

    source = RasterSource(str(path), band, src_georef)
    counts = np.zeros(max_code + 1, np.int64)
    with _open_output(out_path, grid, dtype, fill, legend, path) as dst:
        for win in _grid_windows(grid, window_px):
            values = warp_window(source, src_georef, sub_grid(grid, win),
                                 prepare, Resampling.nearest)
            out = np.where(np.isnan(values), fill, values).astype(dtype)
            _count_units(out, fill, counts)
            dst.write(out, 1, window=win)
    unit_px = {int(c): int(n) for c, n in enumerate(counts) if n}
    return unit_px, dtype, fill


def _raster_georef(path, ref_cfg, band):
    """(Georef, nodata) of a raster reference; nodata from config first."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise ReferenceMapError(
                    f"{path}: the reference raster has no CRS, so it cannot "
                    "be placed on the region grid; assign one (e.g. "
                    "gdal_edit.py -a_srs EPSG:...) and run again")
            if not 1 <= band <= src.count:
                raise ReferenceMapError(
                    f"config key reference.band: {path} has {src.count} "
                    f"band(s). Received: {band}")
            georef = Georef(src.crs, src.transform, src.width, src.height)
            file_nodata = src.nodatavals[band - 1]
    except rasterio.errors.RasterioIOError as exc:
        raise ReferenceMapError(
            f"reference.path: {path} is neither a vector nor a raster GDAL "
            f"can read ({exc})") from exc
    nodata = ref_cfg.get("nodata")
    if nodata is None:
        nodata = file_nodata
        if nodata is None:
            log.warning("%s: no nodata value in the file or in config "
                        "(reference.nodata); every value counts as a unit",
                        path)
    elif file_nodata is not None and float(nodata) != float(file_nodata):
        log.warning("%s: reference.nodata = %s overrides the file's nodata "
                    "%s", path, nodata, file_nodata)
    return georef, nodata


def _scan_codes(path, band, src: Georef, grid: Georef, nodata,
                window_px) -> int:
    """Largest unit code of the reference under the grid, after checks."""
    gl, gb, gr, gt = warp.transform_bounds(grid.crs, src.crs, *grid.bounds,
                                           densify_pts=21)
    win = windows.from_bounds(gl, gb, gr, gt, transform=src.transform)
    col0 = max(math.floor(win.col_off) - 1, 0)
    row0 = max(math.floor(win.row_off) - 1, 0)
    col1 = min(math.ceil(win.col_off + win.width) + 1, src.width)
    row1 = min(math.ceil(win.row_off + win.height) + 1, src.height)
    part = Georef(src.crs, src.transform, col1 - col0, row1 - row0)
    max_code = -1
    with rasterio.open(path) as ds:
        for win in _grid_windows(part, window_px):
            win = windows.Window(win.col_off + col0, win.row_off + row0,
                                 win.width, win.height)
            values = ds.read(band, window=win)
            if nodata is not None:
                values = values[values != nodata]
            values = values[~np.isnan(values)] if values.dtype.kind == "f" \
                else values
            if values.size == 0:
                continue
            _check_codes(values, path)
            max_code = max(max_code, int(values.max()))
    return max_code


def _check_codes(values, path):
    """Stop unless every value is a non-negative integer."""
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        bad = values[values != np.round(values)][0]
        raise ReferenceMapError(
            f"{path}: the reference holds {bad}, not an integer unit code; "
            "a reference must be a categorical raster (set reference.nodata "
            "if this is its nodata value)")
    if values.min() < 0:
        raise ReferenceMapError(
            f"{path}: the reference holds {values.min()}; unit codes must be "
            "non-negative (set reference.nodata if this is its nodata "
            "value)")


# vector references

def _burn_vector(path, ref_cfg, grid, legend, out_path, window_px):
    """Burn polygons' unit codes onto `grid`; unit_px, dtype, nodata, legend.
    """
    frame = _read_polygons(path, ref_cfg, grid)
    column = ref_cfg["unit_column"]
    codes, legend = _unit_codes(frame[column], legend, f"{path}: {column}")
    dtype, fill = _output_type(int(codes.max()), path)
    log.debug("%s: %d polygon(s), codes %d..%d -> %s (nodata %d)", path,
              len(frame), codes.min(), codes.max(), dtype, fill)

    geoms = frame.geometry.to_numpy()
    index = frame.sindex
    counts = np.zeros(int(codes.max()) + 1, np.int64)
    with _open_output(out_path, grid, dtype, fill, legend, path) as dst:
        for win in _grid_windows(grid, window_px):
            sub = sub_grid(grid, win)
            # Polygons keep their file order, so where they overlap the
            # last one wins in every window, as in one whole-grid burn.
            # TODO: offer all_touched; units thinner than a pixel (dykes,
            # narrow beds) miss every pixel centre and vanish from the
            # reference, which the unit list in accuracy.json then shows.
            hits = np.sort(index.query(_box(sub.bounds)))
            out = np.full((sub.height, sub.width), fill, dtype)
            if len(hits):
                out = rio_features.rasterize(
                    zip(geoms[hits], codes[hits]), out=out,
                    transform=sub.transform)
            _count_units(out, fill, counts)
            dst.write(out, 1, window=win)
    unit_px = {int(c): int(n) for c, n in enumerate(counts) if n}
    return unit_px, dtype, fill, legend


def _box(bounds):
    from shapely.geometry import box

    return box(*bounds)


def _read_polygons(path, ref_cfg, grid: Georef):
    """Polygons with a unit, in the grid CRS, those near the grid only."""
    import geopandas as gpd
    import pyogrio

    layer = ref_cfg.get("layer")
    info = pyogrio.read_info(path, layer=layer)
    if info["crs"] is None:
        raise ReferenceMapError(
            f"{path}: the reference has no CRS, so it cannot be placed on "
            "the region grid; assign one (e.g. ogr2ogr -a_srs EPSG:...) and "
            "run again")
    column = ref_cfg.get("unit_column")
    fields = [str(f) for f in info["fields"]]
    listed = ", ".join(fields) or "(none)"
    if column is None:
        raise ReferenceMapError(
            f"config key reference.unit_column is required for polygons "
            f"({path}); set it to the column holding the units, one of: "
            f"{listed}")
    if column not in fields:
        raise ReferenceMapError(
            f"config key reference.unit_column: {column!r} is not a column "
            f"of {path}; its columns are: {listed}")
    src_crs = CRS.from_user_input(info["crs"])
    _check_overlap(path, src_crs, info["total_bounds"], grid)
    bbox = warp.transform_bounds(grid.crs, src_crs, *grid.bounds,
                                 densify_pts=21)
    frame = gpd.read_file(path, layer=layer, bbox=bbox, columns=[column])
    keep = frame.geometry.notna() & ~frame.geometry.is_empty
    keep &= frame[column].notna()
    if (~keep).any():
        log.warning("%s: %d feature(s) without geometry or without a %s "
                    "value left out", path, (~keep).sum(), column)
    frame = frame[keep].to_crs(grid.crs)
    if frame.empty:
        raise ReferenceMapError(
            f"{path}: no polygon with a {column} value overlaps the region "
            "grid; check the region's bbox or aoi and the reference's CRS")
    return frame.reset_index(drop=True)


def _unit_codes(units, legend: dict, where: str):
    """(int64 codes, legend) of a unit column: numbers as they are, names
    through `legend` or, without one, numbered 1..n in sorted order."""
    if units.dtype.kind in "iu" or units.dtype.kind == "f":
        values = units.to_numpy()
        _check_codes(values, where)
        return values.astype(np.int64), legend
    names = units.astype(str)
    if legend:
        code_of = {name: code for code, name in legend.items()}
        unknown = sorted(set(names) - set(code_of))
        if unknown:
            raise ReferenceMapError(
                f"{where}: unit(s) {', '.join(unknown[:10])} are not in "
                "reference.legend; add them or drop the legend to number "
                "units automatically")
    else:
        code_of = {name: i for i, name in enumerate(sorted(set(names)), 1)}
        legend = {code: name for name, code in code_of.items()}
        log.info("%s: %d unit name(s) numbered 1..%d in sorted order",
                 where, len(code_of), len(code_of))
    return names.map(code_of).to_numpy(np.int64), legend


# --- counting ----------------------------------------------------------------

@dataclass(frozen=True)
class Contingency:
    """Pixels of each (reference unit, map cluster) pair, and totals."""

    table: np.ndarray
    """int64 (n_units, n_clusters): pixels valid in both, by pair."""
    units: np.ndarray
    """Unit codes of the rows (those with compared pixels), ascending."""
    clusters: np.ndarray
    """Cluster codes of the columns, ascending."""
    pixels: dict
    """Pixel counts: grid, map, reference, compared, map_without_reference,
    reference_without_map."""
    unit_px: dict
    """Pixels of each unit code over the whole gridded reference."""
    cluster_px: dict
    """Pixels of each cluster over the whole map."""


def contingency(map_path, reference_path,
                window_px: int = 1024) -> Contingency:
    """Count, window by window, the pixels of every (unit, cluster) pair.

    Parameters
    ----------
    map_path : path-like
        The cluster map (integer GeoTIFF; nodata from its tag, else 0).
    reference_path : path-like
        The reference on the same grid (as `rasterize_reference` writes).
    window_px : int, default=1024
        Side of the square windows read at a time.
    """
    with rasterio.open(map_path) as mp, \
            rasterio.open(reference_path) as ref:
        grid = _check_same_grid(mp, ref)
        map_nodata = 0 if mp.nodata is None else int(mp.nodata)
        ref_nodata = None if ref.nodata is None else int(ref.nodata)
        counter = _PairCounter(_span(mp, map_path), _span(ref, reference_path))
        for win in _grid_windows(grid, window_px):
            clusters = mp.read(1, window=win)
            units = ref.read(1, window=win)
            counter.add(units, units != ref_nodata, clusters,
                        clusters != map_nodata)
    out = counter.result(grid.width * grid.height)
    log.info("compared %d px (map %d, reference %d, map without reference "
             "%d)", out.pixels["compared"], out.pixels["map"],
             out.pixels["reference"], out.pixels["map_without_reference"])
    return out


def _check_same_grid(mp, ref) -> Georef:
    """The shared grid of two open rasters, or an error naming both."""
    same = (mp.crs == ref.crs and mp.width == ref.width
            and mp.height == ref.height
            and mp.transform.almost_equals(ref.transform, precision=1e-6))
    if not same:
        raise ReferenceMapError(
            f"{ref.name} is not on the grid of {mp.name}: CRS {ref.crs} "
            f"vs {mp.crs}, {ref.height} x {ref.width} vs {mp.height} x "
            f"{mp.width} px, transform {tuple(ref.transform)[:6]} vs "
            f"{tuple(mp.transform)[:6]}; rasterise the reference again for "
            "this region's grid")
    return Georef(mp.crs, mp.transform, mp.width, mp.height)


def _span(ds, path) -> int:
    """Number of possible values of an unsigned 8- or 16-bit raster."""
    dtype = np.dtype(ds.dtypes[0])
    if dtype not in (np.uint8, np.uint16):
        raise ReferenceMapError(
            f"{path}: expected a uint8 or uint16 categorical raster. "
            f"Received: {dtype}")
    return int(np.iinfo(dtype).max) + 1


class _PairCounter:
    """Running units x clusters counts over windows, via `np.bincount`.

    Unit codes seen so far get compact row numbers (through a lookup table),
    so the table stays small even for uint16 references.
    """

    def __init__(self, map_span: int, ref_span: int):
        self.map_span = map_span
        self.row_of = np.full(ref_span, -1, np.int64)
        self.row_units: list[int] = []
        self.table = np.zeros((0, map_span), np.int64)
        self.unit_px = np.zeros(ref_span, np.int64)
        self.cluster_px = np.zeros(map_span, np.int64)
        self.compared = 0

    def add(self, units, units_ok, clusters, clusters_ok):
        """Count one window (2-D arrays of codes and validity)."""
        self.unit_px += np.bincount(units[units_ok],
                                    minlength=len(self.unit_px))
        self.cluster_px += np.bincount(clusters[clusters_ok],
                                       minlength=self.map_span)
        both = units_ok & clusters_ok
        u, c = units[both].astype(np.int64), clusters[both].astype(np.int64)
        if u.size == 0:
            return
        self._add_rows(u)
        key = self.row_of[u] * self.map_span + c
        pairs = np.bincount(key, minlength=self.table.size)
        self.table += pairs.reshape(-1, self.map_span)
        self.compared += u.size

    def _add_rows(self, u):
        seen = np.flatnonzero(np.bincount(u, minlength=len(self.row_of)))
        new = seen[self.row_of[seen] < 0]
        if new.size:
            self.row_of[new] = np.arange(new.size) + len(self.row_units)
            self.row_units.extend(int(v) for v in new)
            self.table = np.vstack(
                [self.table, np.zeros((new.size, self.map_span), np.int64)])

    def result(self, grid_px: int) -> Contingency:
        order = np.argsort(self.row_units)
        table = self.table[order]
        units = np.asarray(self.row_units, np.int64)[order]
        used = np.flatnonzero(table.sum(axis=0))
        n_map, n_ref = int(self.cluster_px.sum()), int(self.unit_px.sum())
        pixels = {"grid": grid_px, "map": n_map, "reference": n_ref,
                  "compared": self.compared,
                  "map_without_reference": n_map - self.compared,
                  "reference_without_map": n_ref - self.compared}
        return Contingency(
            table[:, used], units, used.astype(np.int64), pixels,
            {int(c): int(n) for c, n in enumerate(self.unit_px) if n},
            {int(c): int(n) for c, n in enumerate(self.cluster_px) if n})


# --- matching ----------------------------------------------------------------

@dataclass(frozen=True)
class Matching:
    """Clusters matched to reference units, and the confusion it gives."""

    name: str
    """"many_to_one" or "one_to_one" (see `MATCHINGS`)."""
    mapping: dict
    """Unit code of each cluster code of the map; None for a cluster left
    unmatched or without any pixel on the reference."""
    confusion: np.ndarray
    """int64 (n_units, n_units + 1): reference units x matched units, the
    last column the pixels of unmatched clusters."""


def match_many_to_one(cont: Contingency) -> Matching:
    """Each cluster to the unit holding most of its pixels.

    Ties go to the unit with the lowest code.
    """
    rows = cont.table.argmax(axis=0)
    mapping = _unmatched(cont)
    mapping.update({int(c): int(cont.units[r])
                    for c, r in zip(cont.clusters, rows)})
    return Matching("many_to_one", mapping, _confusion(cont, mapping))


def match_one_to_one(cont: Contingency) -> Matching:
    """Clusters to units one-to-one, maximising agreeing pixels (Hungarian).
    """
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cont.table, maximize=True)
    mapping = _unmatched(cont)
    mapping.update({int(cont.clusters[c]): int(cont.units[r])
                    for r, c in zip(rows, cols)})
    return Matching("one_to_one", mapping, _confusion(cont, mapping))


def _unmatched(cont: Contingency) -> dict:
    """Every cluster of the map (compared or not) with no unit yet."""
    clusters = set(cont.cluster_px) | {int(c) for c in cont.clusters}
    return {c: None for c in sorted(clusters)}


def _confusion(cont: Contingency, mapping: dict) -> np.ndarray:
    """Sum the contingency columns of clusters matched to the same unit."""
    col_of = {int(u): i for i, u in enumerate(cont.units)}
    out = np.zeros((len(cont.units), len(cont.units) + 1), np.int64)
    for j, cluster in enumerate(cont.clusters):
        unit = mapping[int(cluster)]
        target = len(cont.units) if unit is None else col_of[unit]
        out[:, target] += cont.table[:, j]
    return out


# --- scores ------------------------------------------------------------------

def kappa_with_variance(matrix) -> tuple[float, float]:
    """Cohen's kappa of a square confusion matrix and its variance.

    The variance is the large-sample (delta method) one given by Congalton
    and Green (2009), see `KAPPA_VARIANCE_SOURCE`. With n the total,
    n_ii the diagonal, n_i+ the row and n_+i the column totals:

    - theta1 = sum_i n_ii / n (overall accuracy)
    - theta2 = sum_i n_i+ n_+i / n^2 (chance agreement)
    - theta3 = sum_i n_ii (n_i+ + n_+i) / n^2
    - theta4 = sum_ij n_ij (n_j+ + n_+i)^2 / n^3
    - kappa = (theta1 - theta2) / (1 - theta2)
    - var = [theta1 (1 - theta1) / (1 - theta2)^2
      + 2 (1 - theta1) (2 theta1 theta2 - theta3) / (1 - theta2)^3
      + (1 - theta1)^2 (theta4 - 4 theta2^2) / (1 - theta2)^4] / n

    Both are NaN when chance agreement is 1 (a single class everywhere).
    """
    m = np.asarray(matrix, np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"kappa: expected a square matrix. Received shape "
                         f"{m.shape}")
    n = m.sum()
    rows, cols = m.sum(axis=1), m.sum(axis=0)
    t1 = np.trace(m) / n
    t2 = (rows * cols).sum() / n ** 2
    if not n or math.isclose(t2, 1.0):
        return math.nan, math.nan
    t3 = (np.diag(m) * (rows + cols)).sum() / n ** 2
    t4 = (m * (rows[None, :] + cols[:, None]) ** 2).sum() / n ** 3
    kappa = (t1 - t2) / (1 - t2)
    var = (t1 * (1 - t1) / (1 - t2) ** 2
           + 2 * (1 - t1) * (2 * t1 * t2 - t3) / (1 - t2) ** 3
           + (1 - t1) ** 2 * (t4 - 4 * t2 ** 2) / (1 - t2) ** 4) / n
    return float(kappa), float(var)


def agreement_scores(confusion: np.ndarray) -> dict:
    """Overall accuracy, kappa and per-unit scores of a matched confusion.

    Parameters
    ----------
    confusion : ndarray of shape (n_units, n_units + 1)
        As in `Matching.confusion`: the last column holds unmatched pixels.

    Returns
    -------
    dict
        ``overall_accuracy``, ``kappa``, ``kappa_variance``,
        ``kappa_ci95`` ([low, high]), and ``per_unit``: lists, in row
        order, of ``producers_accuracy`` (correct / reference pixels of the
        unit), ``users_accuracy`` (correct / pixels mapped as the unit),
        ``f1`` and ``reference_px``, ``mapped_px``. Ratios with a zero
        denominator are NaN.
    """
    m = np.asarray(confusion, np.int64)
    # Unmatched pixels form one more predicted class that no reference
    # pixel has: a zero row makes the matrix square for kappa.
    square = np.vstack([m, np.zeros((1, m.shape[1]), np.int64)])
    kappa, var = kappa_with_variance(square)
    n_units = m.shape[0]
    correct = np.diag(m[:, :n_units]).astype(np.float64)
    ref_px = m.sum(axis=1)
    mapped_px = m[:, :n_units].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        producers = correct / ref_px
        users = correct / mapped_px
        f1 = 2 * producers * users / (producers + users)
    half = 1.96 * math.sqrt(var) if np.isfinite(var) else math.nan
    return {
        "overall_accuracy": float(correct.sum() / m.sum()),
        "kappa": kappa, "kappa_variance": var,
        "kappa_ci95": [kappa - half, kappa + half],
        "per_unit": {"producers_accuracy": producers.tolist(),
                     "users_accuracy": users.tolist(), "f1": f1.tolist(),
                     "reference_px": ref_px.tolist(),
                     "mapped_px": mapped_px.tolist()}}


def partition_scores(table) -> dict:
    """Agreement of two partitions from their contingency table alone.

    Parameters
    ----------
    table : ndarray of shape (n_units, n_clusters)
        Pixels of each (reference unit, cluster) pair.

    Returns
    -------
    dict
        ``ari`` (adjusted Rand index), ``nmi`` (normalised mutual
        information, arithmetic mean of the entropies), ``ami`` (adjusted
        mutual information, same normalisation), ``homogeneity``,
        ``completeness``, ``v_measure``; the same numbers as the
        `sklearn.metrics` functions of those names given the pixels'
        labels, without expanding the table into labels.
    """
    t = np.asarray(table, np.int64)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    n = int(t.sum())
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    h_units, h_clusters = _entropy(rows, n), _entropy(cols, n)
    mi = _mutual_information(t, rows, cols, n)
    homogeneity = mi / h_units if h_units else 1.0
    completeness = mi / h_clusters if h_clusters else 1.0
    hc = homogeneity + completeness
    return {"ari": _ari(t, rows, cols, n),
            "nmi": _nmi(mi, h_units, h_clusters, t.shape),
            "ami": _ami(t, rows, cols, n, mi, h_units, h_clusters),
            "homogeneity": homogeneity, "completeness": completeness,
            "v_measure": 2 * homogeneity * completeness / hc if hc else 0.0}


def _pairs(x):
    """Number of unordered pairs, x (x - 1) / 2, exact in int64."""
    x = np.asarray(x, np.int64)
    return x * (x - 1) // 2


def _ari(t, rows, cols, n) -> float:
    index = float(_pairs(t).sum())
    a, b = float(_pairs(rows).sum()), float(_pairs(cols).sum())
    expected = a * b / float(_pairs(n))
    top = (a + b) / 2
    if top == expected:
        return 1.0
    return (index - expected) / (top - expected)


def _entropy(counts, n) -> float:
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


def _mutual_information(t, rows, cols, n) -> float:
    i, j = np.nonzero(t)
    nij = t[i, j].astype(np.float64)
    mi = (nij / n * (np.log(nij) + math.log(n) - np.log(rows[i])
                     - np.log(cols[j]))).sum()
    return max(float(mi), 0.0)


def _nmi(mi, h_units, h_clusters, shape) -> float:
    if shape[0] == shape[1] == 1:
        return 1.0
    if mi == 0:
        return 0.0
    return mi / ((h_units + h_clusters) / 2)


def _ami(t, rows, cols, n, mi, h_units, h_clusters) -> float:
    if t.shape[0] == t.shape[1] == 1 or t.shape[0] == t.shape[1] == 0:
        return 1.0
    emi = _expected_mutual_information(rows, cols, n)
    denominator = (h_units + h_clusters) / 2 - emi
    # Guard a vanishing denominator the way scikit-learn does.
    eps = np.finfo(np.float64).eps
    denominator = min(denominator, -eps) if denominator < 0 else \
        max(denominator, eps)
    return (mi - emi) / denominator


def _expected_mutual_information(rows, cols, n) -> float:
    """E[MI] of two random partitions with these margins (hypergeometric).

    Every (unit, cluster) pair contributes sum_k P(n_ij = k) (k / n)
    log(n k / (a_i b_j)), P hypergeometric. Summing every k, as is usual,
    costs O(n) per pair at ten million pixels; the probabilities beyond
    12 binomial standard deviations (plus 40) of the mean are below e^-70
    (Chernoff bounds hold for the hypergeometric, Hoeffding 1963), so the
    sum stops there.
    """
    from scipy.stats import hypergeom

    total = 0.0
    log_n = math.log(n)
    for a in rows:
        for b in cols:
            lo, hi = max(1, a + b - n), min(a, b)
            mean = a * b / n
            sd = math.sqrt(b * (a / n) * (1 - a / n))
            lo = max(lo, math.floor(mean - 12 * sd - 40))
            hi = min(hi, math.ceil(mean + 12 * sd + 40))
            if hi < lo:
                continue
            k = np.arange(lo, hi + 1, dtype=np.float64)
            p = np.exp(hypergeom.logpmf(k, n, a, b))
            total += float((p * k / n * (np.log(k) + log_n - math.log(a)
                                         - math.log(b))).sum())
    return total


def internal_scores(features, labels, seed: int = 0,
                    silhouette_n: int = 10_000) -> dict:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of a clustering.

    Parameters
    ----------
    features : ndarray of shape (n_pixels, n_features)
        The encoded pixel sample; rows with NaN or inf are left out.
    labels : ndarray of shape (n_pixels,)
        Cluster of each row.
    seed : int, default=0
        Seeds the silhouette subsample.
    silhouette_n : int, default=10_000
        Pixels the silhouette is computed on (its cost is quadratic).

    Returns
    -------
    dict
        ``silhouette``, ``calinski_harabasz``, ``davies_bouldin`` (NaN
        when fewer than two clusters), ``n_px``, ``silhouette_n``.
    """
    from sklearn import metrics

    x = np.asarray(features)
    y = np.asarray(labels).ravel()
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(
            f"internal scores: expected features (n, n_features) and labels "
            f"(n,). Received shapes {x.shape} and {y.shape}")
    finite = np.isfinite(x).all(axis=1)
    x, y = x[finite].astype(np.float64), y[finite]
    out = {"n_px": len(y), "silhouette_n": min(int(silhouette_n), len(y))}
    if not 2 <= len(np.unique(y)) < len(y):
        log.warning("internal scores need at least two clusters and more "
                    "pixels than clusters; got %d cluster(s) on %d px",
                    len(np.unique(y)), len(y))
        return out | {"silhouette": math.nan, "calinski_harabasz": math.nan,
                      "davies_bouldin": math.nan}
    sil = metrics.silhouette_score(x, y, sample_size=out["silhouette_n"],
                                   random_state=seed)
    return out | {
        "silhouette": float(sil),
        "calinski_harabasz": float(metrics.calinski_harabasz_score(x, y)),
        "davies_bouldin": float(metrics.davies_bouldin_score(x, y))}


# --- ground-truth points ----------------------------------------------------

def read_points(points_cfg: dict, grid: Georef, legend: dict):
    """Ground-truth points as grid (row, col) and unit codes, and counts.

    Parameters
    ----------
    points_cfg : dict
        ``path`` (CSV or any vector format), ``unit_column``; for a CSV,
        ``x``, ``y`` (column names, default "x" and "y") and ``crs``
        (required); for a vector file, ``crs`` only assigns one to a file
        without.
    grid : Georef
    legend : dict
        Unit names by code, to turn unit names into codes.

    Returns
    -------
    rows, cols, codes : ndarray of int64
        Points inside the grid with a known unit.
    counts : dict
        ``total``, ``outside_grid``, ``unknown_unit``, ``inside``.
    """
    path = _required(points_cfg, "path", "reference.points")
    column = _required(points_cfg, "unit_column", "reference.points")
    frame = _read_point_table(path, points_cfg, column)
    xs, ys = warp.transform(frame.attrs["crs"], grid.crs,
                            frame["_x"].tolist(), frame["_y"].tolist())
    cols_f, rows_f = ~grid.transform @ (np.asarray(xs), np.asarray(ys))
    rows, cols = np.floor(rows_f), np.floor(cols_f)
    inside = ((rows >= 0) & (rows < grid.height) & (cols >= 0)
              & (cols < grid.width))
    codes, known = _point_codes(frame[column], legend)
    counts = {"total": len(frame),
              "outside_grid": int((~inside).sum()),
              "unknown_unit": int((inside & ~known).sum())}
    if counts["outside_grid"]:
        log.warning("%s: %d of %d point(s) fall outside the region grid and "
                    "are not scored", path, counts["outside_grid"],
                    counts["total"])
    if counts["unknown_unit"]:
        log.warning("%s: %d point(s) have a %s that is not a code or a name "
                    "of the legend; not scored", path,
                    counts["unknown_unit"], column)
    keep = inside & known
    counts["inside"] = int(keep.sum())
    return (rows[keep].astype(np.int64), cols[keep].astype(np.int64),
            codes[keep], counts)


def _read_point_table(path, cfg, column):
    """DataFrame with _x, _y and the unit column; attrs["crs"] set."""
    import pandas as pd

    if str(path).lower().endswith((".csv", ".txt")):
        x, y = cfg.get("x", "x"), cfg.get("y", "y")
        crs = _required(cfg, "crs", "reference.points")
        frame = pd.read_csv(path)
        missing = [c for c in (x, y, column) if c not in frame.columns]
        if missing:
            raise ReferenceMapError(
                f"{path}: no column {', '.join(map(repr, missing))} (config "
                f"keys reference.points.x/y/unit_column); its columns are: "
                f"{', '.join(map(str, frame.columns))}")
        frame = frame.rename(columns={x: "_x", y: "_y"})
    else:
        frame = _read_point_vector(path, cfg, column)
        crs = frame.attrs["crs"]
    try:
        frame.attrs["crs"] = CRS.from_user_input(crs)
    except CRSError as exc:
        raise ReferenceMapError(
            f"config key reference.points.crs: {crs!r} is not a CRS "
            f"({exc}); write it as 'EPSG:32754'") from exc
    return frame


def _read_point_vector(path, cfg, column):
    import geopandas as gpd

    try:
        frame = gpd.read_file(path, layer=cfg.get("layer"))
    except Exception as exc:  # pyogrio raises several types
        raise ReferenceMapError(f"reference.points.path: cannot read {path} "
                                f"({exc})") from exc
    if column not in frame.columns:
        columns = [c for c in frame.columns if c != frame.geometry.name]
        raise ReferenceMapError(
            f"config key reference.points.unit_column: {column!r} is not a "
            f"column of {path}; its columns are: {', '.join(columns)}")
    crs = frame.crs or cfg.get("crs")
    if crs is None:
        raise ReferenceMapError(
            f"{path}: the points have no CRS; assign one to the file or set "
            "reference.points.crs")
    frame = frame[frame.geometry.notna()]
    centroids = frame.geometry.representative_point()
    out = frame.drop(columns=frame.geometry.name).assign(
        _x=centroids.x.to_numpy(), _y=centroids.y.to_numpy())
    out.attrs["crs"] = crs
    return out


def _point_codes(units, legend):
    """(int64 codes, known) of point units given as codes or names."""
    codes = np.full(len(units), -1, np.int64)
    if units.dtype.kind in "iuf":
        values = units.to_numpy(np.float64)
        known = np.isfinite(values) & (values == np.round(values))
        codes[known] = values[known].astype(np.int64)
        return codes, known
    code_of = {name: code for code, name in legend.items()}
    for i, value in enumerate(units.astype(str)):
        if value in code_of:
            codes[i] = code_of[value]
        elif value.lstrip("-").isdigit():
            codes[i] = int(value)
    return codes, codes >= 0


def _values_at(path, rows, cols, window_px=1024):
    """Pixel values of a raster at (rows, cols), read window by window."""
    out = np.zeros(len(rows), np.int64)
    block = (rows // window_px) * (1 << 32) + cols // window_px
    with rasterio.open(path) as src:
        for key in np.unique(block):
            sel = np.flatnonzero(block == key)
            r0 = int(rows[sel[0]] // window_px) * window_px
            c0 = int(cols[sel[0]] // window_px) * window_px
            win = windows.Window(c0, r0, min(window_px, src.width - c0),
                                 min(window_px, src.height - r0))
            values = src.read(1, window=win)
            out[sel] = values[rows[sel] - r0, cols[sel] - c0]
        nodata = 0 if src.nodata is None else int(src.nodata)
    return out, nodata


def points_accuracy(points_cfg: dict, map_path, matchings, legend) -> dict:
    """Overall accuracy at ground-truth points, for each matching.

    Returns ``{"path", "counts": {total, outside_grid, unknown_unit,
    inside, on_map_nodata, scored}, "<matching>": {"overall_accuracy",
    "correct"}}``.
    """
    with rasterio.open(map_path) as src:
        grid = Georef(src.crs, src.transform, src.width, src.height)
    rows, cols, codes, counts = read_points(points_cfg, grid, legend)
    clusters, nodata = _values_at(map_path, rows, cols)
    scored = clusters != nodata
    counts["on_map_nodata"] = int((~scored).sum())
    counts["scored"] = int(scored.sum())
    out = {"path": str(points_cfg["path"]), "counts": counts}
    for m in matchings:
        predicted = np.array([_or_minus1(m.mapping.get(int(c)))
                              for c in clusters[scored]], np.int64)
        correct = int((predicted == codes[scored]).sum())
        oa = correct / counts["scored"] if counts["scored"] else math.nan
        out[m.name] = {"overall_accuracy": oa, "correct": correct}
    log.info("points: %d scored of %d; OA %s", counts["scored"],
             counts["total"],
             ", ".join(f"{m.name} {out[m.name]['overall_accuracy']:.3f}"
                       for m in matchings))
    return out


def _or_minus1(value):
    return -1 if value is None else value


# --- one map against the reference ----------------------------------------

def evaluate_map(map_path, reference_path, *, legend=None, points=None,
                 features=None, labels=None, run=None, seed: int = 0,
                 silhouette_n: int = 10_000, window_px: int = 1024) -> dict:
    """Every score of one map against the gridded reference.

    Parameters
    ----------
    map_path : path-like
        Cluster map (uint8, clusters 1..k, nodata 0).
    reference_path : path-like
        Reference on the same grid, from `rasterize_reference`.
    legend : dict, path-like or None, default=None
        Unit names (see `read_legend`); None: those stored in the reference.
    points : dict, default=None
        Ground-truth points config (see `read_points`); None: no points.
    features, labels : ndarray, default=None
        Feature sample (n, n_features) and its clusters (n,), for
        `internal_scores`; None: no internal scores.
    run : dict, default=None
        Labels of the run (region, sensor, method...), copied to the output
        for `summarise`.
    seed : int, default=0
        Seeds the silhouette subsample.
    silhouette_n : int, default=10_000
        Pixels of the silhouette.
    window_px : int, default=1024
        Side of the windows read at a time.

    Returns
    -------
    dict
        The document `write_accuracy` saves as accuracy.json.
    """
    cont = contingency(map_path, reference_path, window_px)
    if cont.pixels["compared"] == 0:
        raise ReferenceMapError(
            f"{map_path} and {reference_path} share no pixel valid in both; "
            "check that the reference covers the mapped area")
    names = reference_legend(reference_path) | read_legend(legend)
    matchings = [match_many_to_one(cont), match_one_to_one(cont)]

    doc = {"run": dict(run or {}),
           "inputs": {"map": str(map_path), "reference": str(reference_path),
                      "reference_source": _source_of(reference_path)},
           "k": len(cont.cluster_px), "pixels": cont.pixels,
           "units": _units_doc(cont, names),
           "clusters": _clusters_doc(cont),
           "contingency": {"rows": cont.units.tolist(),
                           "columns": cont.clusters.tolist(),
                           "counts": cont.table.tolist()},
           "partition": partition_scores(cont.table),
           "matching": {m.name: _matching_doc(m, cont, names)
                        for m in matchings},
           "kappa_variance_source": KAPPA_VARIANCE_SOURCE}
    if points:
        doc["points"] = points_accuracy(points, map_path, matchings, names)
    if features is not None and labels is not None:
        doc["internal"] = internal_scores(features, labels, seed,
                                          silhouette_n)
    log.info("%s: OA many-to-one %.4f, one-to-one %.4f, ARI %.4f, NMI %.4f",
             map_path, doc["matching"]["many_to_one"]["overall_accuracy"],
             doc["matching"]["one_to_one"]["overall_accuracy"],
             doc["partition"]["ari"], doc["partition"]["nmi"])
    return doc


def _source_of(reference_path):
    with rasterio.open(reference_path) as src:
        return src.tags().get(_TAG_SOURCE)


def _units_doc(cont, names):
    compared = cont.table.sum(axis=1)
    row_of = {int(u): i for i, u in enumerate(cont.units)}
    out = []
    for code, px in sorted(cont.unit_px.items()):
        i = row_of.get(code)
        out.append({"code": code, "name": names.get(code, str(code)),
                    "reference_px": px,
                    "compared_px": 0 if i is None else int(compared[i])})
    return out


def _clusters_doc(cont):
    compared = dict(zip(cont.clusters.tolist(),
                        cont.table.sum(axis=0).tolist()))
    return [{"code": code, "map_px": px,
             "compared_px": int(compared.get(code, 0))}
            for code, px in sorted(cont.cluster_px.items())]


def _matching_doc(m: Matching, cont: Contingency, names: dict) -> dict:
    scores = agreement_scores(m.confusion)
    return {"method": MATCHINGS[m.name],
            "mapping": {str(c): u for c, u in m.mapping.items()},
            "mapping_names": {str(c): None if u is None
                              else names.get(u, str(u))
                              for c, u in m.mapping.items()},
            **scores,
            "confusion": {"rows": cont.units.tolist(),
                          "columns": cont.units.tolist() + [UNMATCHED],
                          "counts": m.confusion.tolist()}}


# --- outputs -----------------------------------------------------------------

def write_accuracy(doc: dict, accuracy_path=None, confusion_path=None,
                   figure_path=None) -> None:
    """Save an `evaluate_map` document: JSON, confusion CSV, heatmaps.

    The CSV holds both matchings, one row per (matching, reference unit),
    one column per matched unit code plus ``unmatched``. The figure shows
    the contingency table and both confusion matrices, each row normalised
    to the unit's reference pixels.
    """
    if accuracy_path is not None:
        _makedirs(accuracy_path)
        with open(accuracy_path, "w") as fh:
            json.dump(_clean_json(doc), fh, indent=1)
    if confusion_path is not None:
        _confusion_frame(doc).to_csv(_makedirs(confusion_path), index=False)
    if figure_path is not None:
        plot_confusion(doc, figure_path)


def _makedirs(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


def _clean_json(value):
    """`value` with NaN/inf as None and NumPy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _confusion_frame(doc):
    import pandas as pd

    names = {u["code"]: u["name"] for u in doc["units"]}
    frames = []
    for name, block in doc["matching"].items():
        conf = block["confusion"]
        frame = pd.DataFrame(conf["counts"],
                             columns=[str(c) for c in conf["columns"]])
        frame.insert(0, "matching", name)
        frame.insert(1, "reference_code", conf["rows"])
        frame.insert(2, "reference_name",
                     [names.get(c, str(c)) for c in conf["rows"]])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def plot_confusion(doc: dict, path) -> None:
    """Heatmaps of the contingency and both confusions (row fractions)."""
    from matplotlib.figure import Figure

    names = {u["code"]: u["name"] for u in doc["units"]}
    panels = [("Units x clusters", doc["contingency"], "cluster")]
    for name, block in doc["matching"].items():
        oa = block["overall_accuracy"]
        panels.append((f"{name.replace('_', '-')} (OA {oa:.3f})",
                       block["confusion"], "matched unit"))
    n_rows = len(doc["contingency"]["rows"])
    width = max(len(p[1]["columns"]) for p in panels)
    size = min(0.38 * max(n_rows, width) + 2.5, 9)
    fig = Figure(figsize=(3 * size, size), layout="constrained")
    image = None
    for ax, (title, table, xlabel) in zip(fig.subplots(1, 3), panels):
        counts = np.asarray(table["counts"], np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = counts / counts.sum(axis=1, keepdims=True)
        image = ax.imshow(share, vmin=0, vmax=1, cmap="viridis",
                          aspect="auto", interpolation="nearest")
        _annotate(ax, share)
        ax.set_xticks(range(len(table["columns"])),
                      [str(c) for c in table["columns"]], rotation=90,
                      fontsize=7)
        ax.set_yticks(range(n_rows),
                      [_unit_label(c, names) for c in table["rows"]],
                      fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=fig.axes, shrink=0.8,
                 label="share of the unit's reference pixels")
    run = " ".join(str(v) for v in doc.get("run", {}).values())
    fig.suptitle(f"{run} ARI {doc['partition']['ari']:.3f}, NMI "
                 f"{doc['partition']['nmi']:.3f}".strip(), fontsize=11)
    fig.savefig(_makedirs(path), dpi=110)


def _unit_label(code, names) -> str:
    """"code name" (at most 28 characters), or the code without a name."""
    name = names.get(code, str(code))
    return str(code) if name == str(code) else f"{code} {name}"[:28]


def _annotate(ax, share):
    """Print each share (in %) in its cell when the table is small."""
    if max(share.shape) > 20:
        return
    for (i, j), value in np.ndenumerate(share):
        if np.isfinite(value) and value >= 0.005:
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center",
                    fontsize=6, color="black" if value > 0.6 else "white")


# --- all methods of a region -------------------------------------------------

SUMMARY_COLUMNS = (
    "rank", "region", "sensor", "method", "k", "oa_many_to_one",
    "kappa_many_to_one", "oa_one_to_one", "kappa_one_to_one", "ari", "nmi",
    "ami", "v_measure", "points_oa_many_to_one", "silhouette",
    "pixels_compared", "path")
"""Columns of the table `summarise` writes."""


def summarise(accuracy_json_paths, out_csv, out_md=None, out_html=None):
    """Compare every map of a region side by side, best first.

    Maps are ranked by overall accuracy with many-to-one matching, then by
    ARI. Run labels (region, sensor, method) come from each document's
    ``run``; when absent, method and sensor are taken from the names of
    the file's two parent folders.

    Returns
    -------
    pandas.DataFrame
        The table written to `out_csv` (and `out_md`, `out_html`).
    """
    import pandas as pd

    rows = [_summary_row(path) for path in accuracy_json_paths]
    if not rows:
        raise ValueError("summarise: no accuracy.json given")
    table = pd.DataFrame(rows)
    table = table.sort_values(["oa_many_to_one", "ari"], ascending=False,
                              na_position="last", kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table[list(SUMMARY_COLUMNS)].reset_index(drop=True)
    table.to_csv(_makedirs(out_csv), index=False)
    if out_md is not None:
        with open(_makedirs(out_md), "w") as fh:
            fh.write(_markdown(table.drop(columns="path")))
    if out_html is not None:
        table.drop(columns="path").to_html(
            _makedirs(out_html), index=False, float_format="%.4f",
            na_rep="")
    log.info("summary of %d map(s); best: %s", len(table),
             " ".join(str(table.loc[0, c]) for c in ("sensor", "method")))
    return table


def _summary_row(path) -> dict:
    with open(path) as fh:
        doc = json.load(fh)
    run = doc.get("run") or {}
    parents = os.path.abspath(path).split(os.sep)
    many, one = doc["matching"]["many_to_one"], doc["matching"]["one_to_one"]
    points = doc.get("points", {}).get("many_to_one", {})
    return {
        "region": run.get("region"),
        "sensor": run.get("sensor", parents[-3]),
        "method": run.get("method", parents[-2]), "k": doc["k"],
        "oa_many_to_one": many["overall_accuracy"],
        "kappa_many_to_one": many["kappa"],
        "oa_one_to_one": one["overall_accuracy"],
        "kappa_one_to_one": one["kappa"],
        **{key: doc["partition"][key]
           for key in ("ari", "nmi", "ami", "v_measure")},
        "points_oa_many_to_one": points.get("overall_accuracy"),
        "silhouette": doc.get("internal", {}).get("silhouette"),
        "pixels_compared": doc["pixels"]["compared"], "path": str(path)}


def _markdown(table) -> str:
    """A GitHub-flavoured Markdown table; floats to four decimals."""
    def cell(value):
        if value is None or (isinstance(value, float)
                             and not math.isfinite(value)):
            return ""
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
