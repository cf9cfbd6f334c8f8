"""Sentinel-2 Level-2A products, in either layout they are shipped in.

- **SAFE**: the product folder from the Copernicus hub, metadata in
  ``MTD_MSIL2A.xml``, JPEG 2000 bands under ``GRANULE/*/IMG_DATA/R10m``,
  ``R20m`` and ``R60m``. Each band is taken at the finest resolution present.
- **COG**: one cloud-optimised GeoTIFF per band beside a STAC item (the
  layout of the AWS "sentinel-cogs" bucket and of Element 84's Earth Search).

Reflectance is ``(DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE``. From
processing baseline 04.00 on, products carry an offset of -1000; older ones
none. Both numbers come from the product's own metadata: the SAFE XML, or
the STAC item's ``raster:bands`` scale and offset (falling back on the
processing baseline when an item has no offset).
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import re
import xml.etree.ElementTree as ET

from lithomap.products.base import (BandSource, MaskSource, Product,
                                    ProductError, RasterSource, require_bands)

log = logging.getLogger(__name__)

DEFAULT_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A",
                 "B11", "B12"]
"""Bands read when a region names none: all 10 m and 20 m bands."""

SPECTRAL_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08",
                  "B8A", "B09", "B10", "B11", "B12"]

SCL_UNUSABLE = {0: "no data", 1: "saturated or defective",
                3: "cloud shadow", 8: "cloud, medium probability",
                9: "cloud, high probability", 10: "thin cirrus"}
"""Scene classification classes that make a pixel unusable."""
SCL_SNOW = 11

# STAC asset keys of Earth Search v1 items, by band name.
_STAC_KEYS = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red",
              "B05": "rededge1", "B06": "rededge2", "B07": "rededge3",
              "B08": "nir", "B8A": "nir08", "B09": "nir09", "B11": "swir16",
              "B12": "swir22", "SCL": "scl"}


def open_product(path: str, bands=None, mask_snow: bool = False) -> Product:
    """Open a Sentinel-2 L2A product folder (SAFE or COG with STAC item).

    Parameters
    ----------
    path : str
        The ``.SAFE`` folder, or the folder holding per-band COGs and the
        STAC item JSON.
    bands : list of str, default=None
        Band names ("B02", "B8A", ...); None reads `DEFAULT_BANDS`.
    mask_snow : bool, default=False
        Also mask pixels the scene classification calls snow or ice.
    """
    bands = list(bands or DEFAULT_BANDS)
    if os.path.isfile(os.path.join(path, "MTD_MSIL2A.xml")):
        return _open_safe(path, bands, mask_snow)
    items = glob.glob(os.path.join(path, "*.json"))
    if os.path.isdir(path) and items:
        return _open_cog(path, items, bands, mask_snow)
    raise ProductError(
        f"{path}: not a Sentinel-2 L2A product; expected a .SAFE folder with "
        "MTD_MSIL2A.xml, or a folder of per-band GeoTIFFs with a STAC item "
        "(*.json). Is the scene's 'sensor' in config.yaml right?")


def _scl_mask(raster: RasterSource, mask_snow: bool) -> MaskSource:
    classes = tuple(SCL_UNUSABLE) + ((SCL_SNOW,) if mask_snow else ())
    return MaskSource("SCL", raster, "classes", classes)


def _offset_for_baseline(baseline: str | None) -> float:
    """BOA_ADD_OFFSET implied by a processing baseline (-1000 from 04.00)."""
    if baseline is None:
        return 0.0
    try:
        return -1000.0 if float(baseline) >= 4.0 else 0.0
    except ValueError:
        return 0.0


# --- SAFE -----------------------------------------------------------------

def _safe_radiometry(xml_path: str):
    """(quantification, {band: offset}, baseline, acquired) from the XML."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise ProductError(f"{xml_path}: not readable XML ({exc})") from exc
    quant = root.find(".//BOA_QUANTIFICATION_VALUE")
    if quant is None:
        raise ProductError(
            f"{xml_path}: no BOA_QUANTIFICATION_VALUE; expected the metadata "
            "of a Level-2A product (is this Level-1C?)")
    ids = {e.get("bandId"): e.get("physicalBand")
           for e in root.iter("Spectral_Information")}
    offsets = {}
    for e in root.iter("BOA_ADD_OFFSET"):
        name = ids.get(e.get("band_id"), "")
        offsets[_band_name(name)] = float(e.text)
    baseline = root.findtext(".//PROCESSING_BASELINE")
    start = root.findtext(".//PRODUCT_START_TIME")
    acquired = _parse_time(start)
    return float(quant.text), offsets, baseline, acquired


def _band_name(physical: str) -> str:
    """"B1" -> "B01", "B8A" stays: the names files and users use."""
    m = re.fullmatch(r"B(\d+)(A?)", physical)
    return f"B{int(m.group(1)):02d}{m.group(2)}" if m else physical


def _parse_time(text: str | None):
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _finest_files(safe: str) -> dict[str, str]:
    """Image file of each band at the finest resolution present."""
    found = {}
    for res in ("R60m", "R20m", "R10m"):  # finer resolutions overwrite
        pattern = os.path.join(safe, "GRANULE", "*", "IMG_DATA", res, "*.jp2")
        for path in sorted(glob.glob(pattern)):
            m = re.search(r"_(B\d\w|SCL)_\d+m\.jp2$", path)
            if m:
                found[m.group(1)] = path
    return found


def _open_safe(path, bands, mask_snow) -> Product:
    xml_path = os.path.join(path, "MTD_MSIL2A.xml")
    quant, offsets, baseline, acquired = _safe_radiometry(xml_path)
    files = _finest_files(path)
    available = {b: f for b, f in files.items() if b in SPECTRAL_BANDS}
    chosen = require_bands(path, available, bands)
    if "SCL" not in files:
        raise ProductError(f"{path}: no SCL_*.jp2 under GRANULE/*/IMG_DATA; "
                           "the scene classification is needed for masking")
    sources = {}
    for name, file in chosen.items():
        offset = offsets.get(name, _offset_for_baseline(baseline))
        sources[name] = BandSource(name, RasterSource(file), 1.0 / quant,
                                   offset / quant)
    log.debug("%s: SAFE, baseline %s, quantification %s, offsets %s", path,
              baseline, quant, {b: offsets.get(b) for b in chosen})
    scene_id = os.path.basename(os.path.normpath(path)).removesuffix(".SAFE")
    return Product("sentinel2", path, scene_id, sources,
                   (_scl_mask(RasterSource(files["SCL"]), mask_snow),),
                   acquired, {"processing_baseline": baseline,
                              "layout": "SAFE"})


# --- COG + STAC -----------------------------------------------------------

def _read_item(items: list[str]) -> tuple[str, dict]:
    problems = []
    for item_path in sorted(items):
        name = os.path.basename(item_path)
        try:
            with open(item_path) as f:
                item = json.load(f)
        except OSError as exc:
            problems.append(f"{name}: unreadable ({exc.strerror})")
            continue
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{name}: not valid JSON ({exc})")
            continue
        if (isinstance(item, dict) and item.get("type") == "Feature"
                and "assets" in item):
            return item_path, item
        problems.append(f"{name}: not a STAC item (needs \"type\": "
                        f"\"Feature\" and \"assets\")")
    raise ProductError(
        f"{os.path.dirname(items[0])}: no STAC item to read the band files "
        f"from; " + "; ".join(problems) + ". Download the item JSON again, "
        "or point the scene at the SAFE product instead")


def _asset(item: dict, band: str) -> dict | None:
    assets = item["assets"]
    for key in (_STAC_KEYS.get(band), band):
        if key in assets:
            return assets[key]
    return None


def _local_file(folder: str, asset: dict | None, band: str) -> str | None:
    """The band's file in `folder`: the asset's file name, else BAND.tif."""
    names = [f"{band}.tif"]
    if asset is not None:
        names.insert(0, os.path.basename(asset["href"]))
    for name in names:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _cog_radiometry(item: dict, asset: dict | None):
    """(scale, offset) of a band from its asset, else from the baseline."""
    props = item.get("properties", {})
    baseline = props.get("s2:processing_baseline")
    info = (asset or {}).get("raster:bands", [{}])[0]
    if "scale" in info:
        return float(info["scale"]), float(info.get("offset", 0.0))
    offset = _offset_for_baseline(baseline)
    if props.get("earthsearch:boa_offset_applied"):
        offset = 0.0
    return 1e-4, offset * 1e-4


def _open_cog(path, items, bands, mask_snow) -> Product:
    item_path, item = _read_item(items)
    props = item.get("properties", {})
    available = {}
    for band in SPECTRAL_BANDS:
        asset = _asset(item, band)
        file = _local_file(path, asset, band)
        if file is not None:
            available[band] = (file, asset)
    chosen = require_bands(path, available, bands)
    sources = {}
    for name, (file, asset) in chosen.items():
        scale, offset = _cog_radiometry(item, asset)
        sources[name] = BandSource(name, RasterSource(file), scale, offset)
    scl = _local_file(path, _asset(item, "SCL"), "SCL")
    if scl is None:
        raise ProductError(f"{path}: no SCL file beside {item_path}; the "
                           "scene classification is needed for masking")
    log.debug("%s: COG, baseline %s, scale/offset %s", path,
              props.get("s2:processing_baseline"),
              {b: (s.scale, s.offset) for b, s in sources.items()})
    return Product("sentinel2", path, item.get("id", os.path.basename(path)),
                   sources, (_scl_mask(RasterSource(scl), mask_snow),),
                   _parse_time(props.get("datetime")),
                   {"processing_baseline": props.get("s2:processing_baseline"),
                    "layout": "COG"})
