"""Categorical maps as Cloud Optimized GeoTIFFs that open styled in QGIS.

The map is streamed chunk by chunk into a tiled temporary GeoTIFF, then
copied by GDAL's COG driver, which adds overviews resampled by the mode
(never averaging class codes). The final file appears under its name only
once complete. It carries a colour table (one distinct colour per class,
nodata 0 transparent) and a band description.

Beside ``map.tif`` go three sidecars, rewritten by `write_sidecars` once
clusters are matched to reference units:

``map.qml``
    QGIS style for the paletted renderer: a colour and a label per class
    ("cluster 3", or "Granite (cluster 3)" once matched). QGIS loads it
    with the layer because it shares the basename.
``map.tif.aux.xml``
    GDAL's PAM file with a thematic raster attribute table (value, pixel
    count, area, unit, label, colour), which GDAL and QGIS 3.30+ read.
``map_classes.csv``
    The same table for people and spreadsheets.

Pixels are counted by windowed reads of the written file, one strip of
blocks at a time, so a 10980 x 10980 map never sits in memory whole.
"""

from __future__ import annotations

import colorsys
import csv
import logging
import math
import os
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from lithomap.products.base import Georef
from lithomap.progress import for_array

log = logging.getLogger(__name__)

NODATA = 0
"""Value of unmapped pixels in every map."""

BLOCK_PX = 512
"""Tile size of the maps and of their overviews."""

UNMATCHED = "unmatched"
"""Unit name of a cluster that a one-to-one matching left without unit."""


class ExportError(ValueError):
    """A map or its sidecars cannot be written as asked."""


@dataclass(frozen=True)
class MapClass:
    """One class of a map, as listed in its style and attribute table."""

    value: int
    """Pixel value (cluster number, 1..k)."""
    count: int
    """Pixels of this value in the map."""
    area_km2: float
    """count x pixel area, in km² (NaN when the CRS has no linear unit)."""
    unit: str
    """Matched reference unit, or "" when there is none."""
    label: str
    """What the legend shows: "cluster 3" or "Granite (cluster 3)"."""
    rgba: tuple[int, int, int, int]
    """Colour of the class, 0-255 per channel."""

    @property
    def hex(self) -> str:
        """Colour as "#rrggbb"."""
        return "#{:02x}{:02x}{:02x}".format(*self.rgba[:3])


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


def class_label(value: int, unit: str | None = None) -> str:
    """Legend label of cluster `value`, with its matched unit if any; a
    unit known only by its code reads "unit 8"."""
    if not unit:
        return f"cluster {value}"
    if unit.isdigit():
        unit = f"unit {unit}"
    return f"{unit} (cluster {value})"


def sidecar_paths(path: str) -> dict[str, str]:
    """Paths of the style, attribute table and CSV beside map `path`."""
    stem = os.path.splitext(path)[0]
    return {"qml": f"{stem}.qml", "aux": f"{path}.aux.xml",
            "csv": f"{stem}_classes.csv"}


# --- writing the map ---------------------------------------------------------

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
    return {"driver": "GTiff", "width": grid.width, "height": grid.height,
            "count": 1, "dtype": "uint8", "crs": grid.crs,
            "transform": grid.transform, "nodata": NODATA, "tiled": True,
            "blockxsize": BLOCK_PX, "blockysize": BLOCK_PX,
            "compress": "deflate"}


def write_map(labels: da.Array, grid: Georef, path: str, k: int,
              description: str = "cluster",
              units: dict[int, str] | None = None,
              progress_every_s: float = 10.0) -> list[MapClass]:
    """Compute `labels` chunk by chunk and write it as a styled COG.

    Parameters
    ----------
    labels : dask.array.Array, shape (y, x)
        Class numbers 1..k, 0 where nothing is mapped.
    grid : Georef
        Grid of `labels`: CRS, transform, width, height.
    path : str
        The map GeoTIFF; its sidecars (`sidecar_paths`) are written too.
    k : int
        Number of classes (1 <= k <= 255).
    description : str, default "cluster"
        Band description stored in the file.
    units : dict, optional
        Reference unit name per class number; default None: labels
        "cluster n".
    progress_every_s : float, default 10
        Least seconds between two progress lines in the log.

    Returns
    -------
    list of MapClass
        One entry per class 1..k, with its pixel count and area.
    """
    _check_k(k, path)
    if labels.shape != (grid.height, grid.width):
        raise ExportError(
            f"{path}: labels have shape {labels.shape}, the grid is "
            f"{grid.height} x {grid.width} (y, x); build the labels from "
            "the region's stack")
    tmp = f"{path}.part.tif"
    try:
        with (rasterio.open(tmp, "w", **_profile(grid)) as dst,
              for_array(log, labels, progress_every_s, what="map")):
            da.store(labels.astype(np.uint8), _WindowWriter(dst), lock=False)
        _to_cog(tmp, path, k, description)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    classes = write_sidecars(path, units)
    mapped = sum(c.count for c in classes)
    log.info("wrote %s (%d x %d px, %d classes, %d px mapped = %.1f %%)",
             path, grid.width, grid.height, k, mapped,
             100 * mapped / (grid.width * grid.height))
    return classes


def _check_k(k, path: str) -> None:
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= 255:
        raise ExportError(f"{path}: k must be an integer in 1..255 to fit "
                          f"uint8 with nodata 0. Received: {k!r}")


def _to_cog(src_path: str, path: str, k: int, description: str) -> None:
    """Copy a tiled GeoTIFF to a COG with mode overviews and a palette."""
    with rasterio.open(src_path, "r+") as src:
        src.write_colormap(1, palette(k))
        src.colorinterp = [ColorInterp.palette]
        src.set_band_description(1, description)
    part = f"{path}.part"
    rasterio.shutil.copy(src_path, part, driver="COG", compress="DEFLATE",
                         blocksize=BLOCK_PX, overview_resampling="MODE",
                         resampling="NEAREST")
    # A PAM file left by an earlier map would describe the old classes.
    stale = f"{path}.aux.xml"
    if os.path.exists(stale):
        os.remove(stale)
    os.replace(part, path)


# --- counting ----------------------------------------------------------------

def count_classes(path: str, k: int | None = None,
                  rows_per_read: int = BLOCK_PX) -> np.ndarray:
    """Pixels of each value 0..k in map `path`, by windowed reads.

    Parameters
    ----------
    path : str
        A uint8 map.
    k : int, optional
        Highest class; default: the highest colour-table entry, else the
        highest value present.
    rows_per_read : int, default 512
        Height of the strips read one at a time (full width).

    Returns
    -------
    numpy.ndarray of int64, shape (k + 1,)
        Index 0 counts nodata.
    """
    with rasterio.open(path) as src:
        table_k = _colour_table_k(src)
        counts = np.zeros(256, np.int64)
        for row in range(0, src.height, rows_per_read):
            window = Window(0, row, src.width,
                            min(rows_per_read, src.height - row))
            block = src.read(1, window=window)
            counts += np.bincount(block.ravel(), minlength=256)[:256]
    if k is None:
        present = np.flatnonzero(counts[1:])
        k = table_k or (int(present[-1]) + 1 if present.size else 1)
    beyond = int(counts[k + 1:].sum())
    if beyond:
        log.warning("%s: %d px have values above k = %d; they are left out "
                    "of the class table", path, beyond, k)
    return counts[:k + 1]


def _colour_table_k(src) -> int | None:
    """Highest class with a colour, None without a colour table."""
    try:
        colours = src.colormap(1)
    except ValueError:
        return None
    # GDAL pads colour tables to 256 entries with opaque black.
    used = [v for v, c in colours.items()
            if v != NODATA and c != (0, 0, 0, 255)]
    return max(used) if used else None


def pixel_area_m2(src) -> float:
    """Area of one pixel of an open dataset in m², NaN without a linear
    CRS unit (e.g. a map in degrees)."""
    if src.crs is None or not src.crs.is_projected:
        return math.nan
    _, factor = src.crs.linear_units_factor
    return abs(src.transform.determinant) * factor ** 2


# --- the class table and its files -------------------------------------------

def class_table(path: str, units: dict[int, str] | None = None,
                k: int | None = None) -> list[MapClass]:
    """Classes 1..k of map `path`: counts, areas, units, labels, colours.

    Colours come from the file's colour table (the file is the reference
    for QGIS and GDAL alike); counts from windowed reads.
    """
    units = {int(c): u for c, u in (units or {}).items()}
    counts = count_classes(path, k)
    k = len(counts) - 1
    with rasterio.open(path) as src:
        area_m2 = pixel_area_m2(src)
        try:
            colours = src.colormap(1)
        except ValueError:
            colours = palette(k)
    if math.isnan(area_m2):
        log.warning("%s: CRS has no linear unit; class areas are NaN", path)
    rows = []
    for value in range(1, k + 1):
        unit = units.get(value) or ""
        if unit == UNMATCHED:
            unit = ""
        rows.append(MapClass(
            value=value, count=int(counts[value]),
            area_km2=float(counts[value]) * area_m2 / 1e6, unit=unit,
            label=class_label(value, unit),
            rgba=tuple(int(c) for c in colours.get(value, (0, 0, 0, 255)))))
    return rows


def write_sidecars(path: str, units: dict[int, str] | None = None,
                   k: int | None = None) -> list[MapClass]:
    """(Re)write the QGIS style, PAM attribute table and class CSV of map
    `path`; returns the class table. `units` names matched clusters.

    Colours stay those of the colour table, one per cluster, even when
    several clusters share a unit.
    # TODO: optional colours per reference unit (from a legend with
    # colours) so that a matched map reads like the reference map.
    """
    if not os.path.exists(path):
        raise ExportError(f"{path}: no such map; run the map rule first")
    classes = class_table(path, units, k)
    with rasterio.open(path) as src:
        description = src.descriptions[0] or "cluster"
    paths = sidecar_paths(path)
    write_qml(paths["qml"], classes)
    write_rat(paths["aux"], classes, description)
    write_class_csv(paths["csv"], classes)
    log.info("styled %s: %s", path, ", ".join(c.label for c in classes))
    return classes


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.part"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _xml_text(root: ET.Element, doctype: str = "") -> str:
    ET.indent(root, space="  ")
    return doctype + ET.tostring(root, encoding="unicode") + "\n"


def write_qml(path: str, classes: list[MapClass]) -> None:
    """QGIS layer style: paletted renderer on band 1, nearest resampling,
    one entry per class; nodata (0) has no entry, so it stays clear."""
    root = ET.Element("qgis", version="3.22.0",
                      styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    # Class codes must never be interpolated, zoomed in or out.
    ET.SubElement(provider, "resampling", enabled="false",
                  zoomedInResamplingMethod="nearestNeighbour",
                  zoomedOutResamplingMethod="nearestNeighbour",
                  maxOversampling="2")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted",
                             band="1", opacity="1", alphaBand="-1",
                             nodataColor="")
    ET.SubElement(renderer, "rasterTransparency")
    entries = ET.SubElement(renderer, "colorPalette")
    for c in classes:
        ET.SubElement(entries, "paletteEntry", value=str(c.value),
                      color=c.hex, alpha=str(c.rgba[3]), label=c.label)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0",
                  gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0",
                  invertColors="0", colorizeOn="0", colorizeRed="255",
                  colorizeGreen="128", colorizeBlue="128",
                  colorizeStrength="100")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    doctype = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
    _atomic_write(path, _xml_text(root, doctype))


# GDAL's RAT field types and usages (gdal.h: GDALRATFieldType/Usage).
_GFT = {"int": 0, "real": 1, "str": 2}
_GFU = {"generic": 0, "pixel_count": 1, "name": 2, "min_max": 5, "red": 6,
        "green": 7, "blue": 8, "alpha": 9}

RAT_FIELDS = (
    # (name, type, usage, value of a MapClass)
    ("value", "int", "min_max", lambda c: c.value),
    ("count", "int", "pixel_count", lambda c: c.count),
    ("area_km2", "real", "generic", lambda c: c.area_km2),
    ("unit", "str", "generic", lambda c: c.unit),
    ("label", "str", "name", lambda c: c.label),
    ("red", "int", "red", lambda c: c.rgba[0]),
    ("green", "int", "green", lambda c: c.rgba[1]),
    ("blue", "int", "blue", lambda c: c.rgba[2]),
    ("alpha", "int", "alpha", lambda c: c.rgba[3]),
)
"""Columns of the raster attribute table, in order."""


def _rat_value(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(round(value, 6))
    return str(value)


def write_rat(path: str, classes: list[MapClass],
              description: str = "cluster") -> None:
    """PAM sidecar (``.tif.aux.xml``) holding a thematic raster attribute
    table for band 1; GDAL merges it with the file when opening it."""
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    ET.SubElement(band, "Description").text = description
    # No Row0Min/BinSize: rows are found by the value column, not by
    # linear binning, so that the table can start at class 1.
    table = ET.SubElement(band, "GDALRasterAttributeTable",
                          tableType="thematic")
    for i, (name, kind, usage, _) in enumerate(RAT_FIELDS):
        field = ET.SubElement(table, "FieldDefn", index=str(i))
        ET.SubElement(field, "Name").text = name
        ET.SubElement(field, "Type").text = str(_GFT[kind])
        ET.SubElement(field, "Usage").text = str(_GFU[usage])
    for i, c in enumerate(classes):
        row = ET.SubElement(table, "Row", index=str(i))
        for _, _, _, get in RAT_FIELDS:
            ET.SubElement(row, "F").text = _rat_value(get(c))
    _atomic_write(path, _xml_text(root))


CSV_COLUMNS = ("value", "count", "area_km2", "percent", "unit", "label",
               "colour")
"""Columns of the class CSV."""


def write_class_csv(path: str, classes: list[MapClass]) -> None:
    """The class table as CSV; percent is of the mapped pixels."""
    mapped = sum(c.count for c in classes) or 1
    tmp = f"{path}.part"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for c in classes:
            writer.writerow([c.value, c.count, _rat_value(c.area_km2),
                             round(100 * c.count / mapped, 3), c.unit,
                             c.label, c.hex])
    os.replace(tmp, path)


def read_class_csv(path: str) -> list[dict]:
    """Rows of a class CSV, numbers converted."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["value"] = int(row["value"])
        row["count"] = int(row["count"])
        row["area_km2"] = float(row["area_km2"])
        row["percent"] = float(row["percent"])
    return rows


# --- names from a matching ---------------------------------------------------

def units_from_accuracy(doc: dict,
                        matching: str = "many_to_one") -> dict[int, str]:
    """Unit name per cluster from an `evaluate_map` document.

    Parameters
    ----------
    doc : dict
        Contents of ``accuracy.json``.
    matching : {"many_to_one", "one_to_one"}, default "many_to_one"
        Which matching names the clusters. Many-to-one names every
        cluster (several may share a unit); one-to-one leaves extra
        clusters unnamed.
    """
    try:
        names = doc["matching"][matching]["mapping_names"]
    except KeyError as exc:
        known = sorted(doc.get("matching", {}))
        raise ExportError(
            f"accuracy document: no matching {matching!r} with "
            f"mapping_names; it has {known}. Use one of those, or rerun the "
            "evaluate rule") from exc
    return {int(c): name for c, name in names.items()
            if name and name != UNMATCHED}
