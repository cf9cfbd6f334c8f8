"""ASTER products: AST_L1T, AST_07XT, and per-band GeoTIFF exports of both.

Three shapes of input are read:

- **AST_L1T** (HDF-EOS2, LP DAAC, collection 003): swaths ``VNIR_Swath``
  (``ImageData1``, ``ImageData2``, ``ImageData3N``, 15 m), ``SWIR_Swath``
  (``ImageData4`` .. ``ImageData9``, 30 m) and ``TIR_Swath``
  (``ImageData10`` .. ``ImageData14``, 90 m), digital numbers (DN) of
  at-sensor radiance. The ODL metadata in the global attributes
  ``coremetadata.0`` and ``productmetadata.0`` give the gain of each band
  (``GAIN = ("01", "HGH")``), the sun (``SOLARDIRECTION`` = azimuth,
  elevation), the acquisition date and the map grid (``UPPERLEFTM`` and
  ``LOWERRIGHTM`` = northing, easting of the corner pixel centres;
  ``UTMZONENUMBER``).
- **AST_07XT** (HDF-EOS2): surface reflectance, VNIR with crosstalk-corrected
  SWIR, as integers scaled by 0.001, in swaths ``SurfaceReflectanceVNIR``
  (``Band1``, ``Band2``, ``Band3N``) and ``SurfaceReflectanceSWIR``
  (``Band4`` .. ``Band9``). The LP DAAC ships the VNIR and the SWIR swath as
  two files whose production times differ by a second; give either file
  (or their folder) and the other is found by its granule name.
- **GeoTIFF exports**, one file per band, in a folder or a ``.zip``, matched
  to bands by name: ``..._ImageData3N.tif`` (the LP DAAC hdf2tif naming),
  ``..._SurfaceReflectanceVNIR_Band1.tif``, ``..._VNIR_Band3N.tif``,
  ``..._B04.tif``. L1T exports hold DN, which need the gains, the sun and the
  date: they are taken from a ``.met`` (ODL) or ``.xml`` file beside the
  bands, and the reader options ``gains``, ``sun_elevation`` and
  ``acquired`` fill in or override them. Without them the reader stops and
  says which of them is missing.

Band names are ``"1"``, ``"2"``, ``"3N"``, ``"4"`` .. ``"9"`` (and
``"10"`` .. ``"14"`` for TIR). ``"B01"``, ``"B3N"``, ``"Band3N"``,
``"ImageData4"`` and integers are accepted and normalised.

Radiometry of L1T (ASTER User Handbook v2, Abrams, Hook and Ramachandran,
section 5): radiance ``L = (DN - 1) * UCC[band, gain]`` in W m-2 sr-1 um-1,
and top-of-atmosphere reflectance ``rho = pi * L * d**2 / (ESUN *
sin(sun_elevation))``. Both steps are linear in DN, so each band keeps one
``scale`` and ``offset``. TIR bands carry no solar reflectance: for them the
reader returns radiance (W m-2 sr-1 um-1, not in [0, 1]); brightness
temperature is not computed.

The SWIR detectors of ASTER failed in April 2008: "ASTER SWIR data acquired
since April 2008 are not useable, and show saturation of values and severe
striping" (ASTER SWIR User Advisory, JPL, 2009; the LP DAAC lists the same
among the known issues of AST_L1T and AST_07XT). Scenes acquired on or after
`SWIR_FAILURE_DATE` that are asked for SWIR bands raise a
`SwirFailureWarning`; the option ``exclude_failed_swir`` drops those bands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import glob
import logging
import math
import os
import re
import threading
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from lithomap.products.base import (BandSource, Georef, Product,
                                    ProductError, RasterSource)

log = logging.getLogger(__name__)

SWIR_FAILURE_DATE = dt.datetime(2008, 4, 1, tzinfo=dt.timezone.utc)
"""First day on which ASTER SWIR data are unusable (ASTER SWIR User
Advisory, JPL 2009: "data acquired since April 2008")."""

VNIR = ("1", "2", "3N")
SWIR = ("4", "5", "6", "7", "8", "9")
TIR = ("10", "11", "12", "13", "14")
DEFAULT_BANDS = [*VNIR, *SWIR]
"""Bands read when none are asked for: VNIR and SWIR."""

GAIN_CODES = ("HGH", "NOR", "LO1", "LO2")
"""Gain settings that have a unit conversion coefficient."""

# Unit conversion coefficients, W m-2 sr-1 um-1 per DN, by gain setting
# (ASTER User Handbook v2, table 5). VNIR has no low gain 2; TIR has one
# setting only ("NOR" here).
UCC = {
    "1": {"HGH": 0.676, "NOR": 1.688, "LO1": 2.25},
    "2": {"HGH": 0.708, "NOR": 1.415, "LO1": 1.89},
    "3N": {"HGH": 0.423, "NOR": 0.862, "LO1": 1.15},
    "4": {"HGH": 0.1087, "NOR": 0.2174, "LO1": 0.290, "LO2": 0.290},
    "5": {"HGH": 0.0348, "NOR": 0.0696, "LO1": 0.0925, "LO2": 0.409},
    "6": {"HGH": 0.0313, "NOR": 0.0625, "LO1": 0.0830, "LO2": 0.390},
    "7": {"HGH": 0.0299, "NOR": 0.0597, "LO1": 0.0795, "LO2": 0.332},
    "8": {"HGH": 0.0209, "NOR": 0.0417, "LO1": 0.0556, "LO2": 0.245},
    "9": {"HGH": 0.0159, "NOR": 0.0318, "LO1": 0.0424, "LO2": 0.265},
    "10": {"NOR": 6.822e-3},
    "11": {"NOR": 6.780e-3},
    "12": {"NOR": 6.590e-3},
    "13": {"NOR": 5.693e-3},
    "14": {"NOR": 5.225e-3},
}

# Exo-atmospheric solar irradiance per band, W m-2 um-1: the MODTRAN-based
# values of Thome et al. as tabulated by the LP DAAC in its AST_L1T
# DN-to-reflectance tutorial (ASTERL1T_DN2REF, C. Krehbiel, 2017). Smith's
# table differs by up to 8 % in bands 5-9; reflectance scales inversely.
ESUN = {"1": 1848.0, "2": 1549.0, "3N": 1114.0, "4": 225.4, "5": 86.63,
        "6": 81.85, "7": 74.85, "8": 66.49, "9": 59.85}

SUBSYSTEM = {**{b: "VNIR" for b in VNIR}, **{b: "SWIR" for b in SWIR},
             **{b: "TIR" for b in TIR}}
RES_M = {"VNIR": 15.0, "SWIR": 30.0, "TIR": 90.0}
"""Nominal pixel size of each subsystem."""

L1T_SWATH = {"VNIR": "VNIR_Swath", "SWIR": "SWIR_Swath",
             "TIR": "TIR_Swath"}
SRF_SWATH = {"VNIR": "SurfaceReflectanceVNIR",
             "SWIR": "SurfaceReflectanceSWIR"}
SRF_SCALE = 0.001
"""AST_07XT reflectance = DN * 0.001."""

WGS84_E2 = 6.69437999014e-3
"""First eccentricity squared of WGS84, for geocentric latitudes."""


class SwirFailureWarning(UserWarning):
    """SWIR bands were asked of a scene acquired after the SWIR failure."""


def band_name(value) -> str:
    """Canonical ASTER band name of `value` ("B01" -> "1", "b3n" -> "3N").

    Raises
    ------
    ProductError
        If `value` names no ASTER band ("3B" is not read: L1T lacks it).
    """
    text = str(value).strip().upper()
    text = re.sub(r"^(IMAGEDATA|BAND|B)_?", "", text)
    text = text.lstrip("0") or "0"
    if text == "3":
        text = "3N"
    if text not in SUBSYSTEM:
        raise ProductError(
            f"bands: {value!r} is not an ASTER band; expected one of "
            f"{', '.join(SUBSYSTEM)} (B01, B3N, ImageData4 also work). "
            "Band 3B (backward view) is not read")
    return text


def _gain_key(band: str) -> str:
    """Band label used in the GAIN metadata: "01", "3N", "09"."""
    return band if band == "3N" else band.zfill(2)


# --------------------------------------------------------------------------
# ODL (the text of StructMetadata.0, coremetadata.0, productmetadata.0, .met)


@dataclass
class OdlNode:
    """A GROUP or OBJECT of an ODL text, with its statements."""

    kind: str
    """"GROUP", "OBJECT" or "ROOT"."""
    name: str
    """Name after ``GROUP =`` / ``OBJECT =``."""
    attrs: dict = dataclasses.field(default_factory=dict)
    """Statements inside the node (``CLASS``, ``NUM_VAL``, ``VALUE``...)."""
    children: list = dataclasses.field(default_factory=list)
    """Nested groups and objects, in file order."""

    def walk(self, path=()):
        """Yield ``(path, node)`` for every node below this one."""
        for child in self.children:
            yield path, child
            yield from child.walk(path + (child.name,))


def _odl_statements(text: str):
    """Split ODL text into ``key = value`` strings (values may span lines)."""
    depth, quoted, start = 0, False, 0
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "({":
            depth += 1
        elif not quoted and char in ")}":
            depth -= 1
        elif char == "\n" and depth <= 0 and not quoted:
            yield text[start:i].strip()
            start = i + 1
    yield text[start:].strip()


def _odl_value(text: str):
    """Python value of an ODL value: str, int, float, or a tuple of them."""
    text = text.strip()
    if text[:1] in "({" and text[-1:] in ")}":
        items = re.findall(r'"[^"]*"|[^,]+', text[1:-1])
        return tuple(_odl_value(item) for item in items if item.strip())
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_odl(text: str) -> OdlNode:
    """Tree of the GROUP and OBJECT nodes of an ODL metadata text."""
    root = OdlNode("ROOT", "")
    stack = [root]
    for statement in _odl_statements(text.replace("\x00", "")):
        if not statement or statement.startswith("/*"):
            continue
        if statement.upper() == "END":
            break
        key, _, value = statement.partition("=")
        key = key.strip()
        if key.upper() in ("GROUP", "OBJECT"):
            node = OdlNode(key.upper(), value.strip())
            stack[-1].children.append(node)
            stack.append(node)
        elif key.upper() in ("END_GROUP", "END_OBJECT"):
            if len(stack) > 1:
                stack.pop()
        elif key:
            stack[-1].attrs[key.upper()] = _odl_value(value)
    return root


class Metadata:
    """Named values of one or more ODL (or XML) metadata texts.

    Objects are looked up by name anywhere in the trees, so the reader does
    not depend on which group or which attribute (core, product or archive
    metadata) holds them.
    """

    def __init__(self, entries, sources=()):
        self.entries = list(entries)
        """``(name, value, context)``: context joins group names and CLASS."""
        self.sources = tuple(sources)
        """Where the entries came from, for messages."""

    @classmethod
    def from_odl(cls, texts: dict) -> "Metadata":
        """Metadata of ``{source name: ODL text}``."""
        entries = []
        for text in texts.values():
            for path, node in parse_odl(text).walk():
                if node.kind != "OBJECT" or "VALUE" not in node.attrs:
                    continue
                context = "/".join(path) + "/" + str(node.attrs.get(
                    "CLASS", ""))
                entries.append((node.name.upper(), node.attrs["VALUE"],
                                context.upper()))
        return cls(entries, texts)

    def values(self, name: str) -> list:
        """All ``(value, context)`` of objects called `name`.

        Flattened names that append the CLASS ("GAIN.1", "UTMZONECODE1",
        "IMAGEDATAINFORMATION3N", as GDAL lists them) match too.
        """
        pattern = re.compile(re.escape(name.upper()) + r"(\.?\d{1,2}N?)?")
        return [(v, c) for n, v, c in self.entries if pattern.fullmatch(n)]

    def first(self, name: str, prefer: str | None = None):
        """Value of `name`, preferring one whose context names `prefer`."""
        found = self.values(name)
        if prefer:
            for value, context in found:
                if prefer.upper() in context:
                    return value
        return found[0][0] if found else None

    def gains(self) -> dict:
        """Gain code by band label, from every GAIN object ("01" -> "HGH")."""
        gains = {}
        for value, _ in self.values("GAIN"):
            if isinstance(value, str):
                value = tuple(v.strip().strip('"') for v in value.split(","))
            if isinstance(value, tuple) and len(value) == 2:
                gains[str(value[0]).strip().upper()] = (
                    str(value[1]).strip().upper())
        return gains


def _xml_metadata(text: str) -> list:
    """Entries of an XML metadata file: CMR additional attributes and tags."""
    entries = []
    root = ET.fromstring(text)
    for elem in root.iter():
        tag = elem.tag.rsplit("}", 1)[-1].upper()
        children = {c.tag.rsplit("}", 1)[-1].upper(): c for c in elem}
        if "NAME" in children and ({"VALUE", "VALUES"} & set(children)):
            values = [v.text or "" for v in elem.iter()
                      if v.tag.rsplit("}", 1)[-1].upper() == "VALUE"]
            value = values[0] if len(values) == 1 else tuple(values)
            entries.append(((children["NAME"].text or "").strip().upper(),
                            value, tag))
        elif elem.text and elem.text.strip() and not len(elem):
            entries.append((tag, elem.text.strip(), ""))
    return entries


# --------------------------------------------------------------------------
# HDF4 access through pyhdf


@dataclass(frozen=True)
class FieldInfo:
    """Where one swath field lives inside an HDF4 file."""

    ref: int
    """HDF reference number of the SDS."""
    shape: tuple
    """(rows, columns)."""
    dtype: str
    """NumPy dtype name of the values."""
    attrs: tuple = ()
    """SDS attributes as ``(name, value)`` pairs."""


# The HDF4 library is not thread-safe: every pyhdf call in this process goes
# through one lock (Dask's threaded scheduler reads chunks concurrently).
_HDF4_LOCK = threading.RLock()

_HDF_DTYPES = {3: "uint8", 4: "int8", 5: "float32", 6: "float64",
               20: "int8", 21: "uint8", 22: "int16", 23: "uint16",
               24: "int32", 25: "uint32"}


def _open_sd(path: str):
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    try:
        return SD(path, SDC.READ)
    except HDF4Error as exc:
        raise ProductError(
            f"{path}: cannot be opened as an HDF4 file ({exc}); expected an "
            "ASTER HDF-EOS2 product (.hdf)") from exc


@functools.lru_cache(maxsize=32)
def _layout(path: str, stamp: float) -> dict:
    """Fields of every swath: ``{swath: {"Data Fields": {name: FieldInfo}}}``.

    Swath members are found through the HDF-EOS2 Vgroups (class "SWATH"),
    because field names repeat across swaths ("Latitude" in each). `stamp`
    (the file's mtime) only keys the cache.
    """
    from pyhdf.HDF import HC

    infos = _sds_infos(path)
    groups = _vgroups(path)
    layout = {}
    for name, vclass, members in groups.values():
        if vclass != "SWATH":
            continue
        swath = layout.setdefault(name, {})
        for tag, ref in members:
            if tag != HC.DFTAG_VG or ref not in groups:
                continue
            group_name, _, fields = groups[ref]
            found = swath.setdefault(group_name, {})
            for ftag, fref in fields:
                if ftag == HC.DFTAG_NDG and fref in infos:
                    fname, shape, dtype, attrs = infos[fref]
                    found[fname] = FieldInfo(fref, shape, dtype, attrs)
    if not layout:
        # Not HDF-EOS: a flat file of SDS; expose them under one swath.
        layout[""] = {"Data Fields": {
            n: FieldInfo(r, s, d, a) for r, (n, s, d, a) in infos.items()}}
    return layout


def _sds_infos(path: str) -> dict:
    """``{ref: (name, shape, dtype, attrs)}`` of every SDS in the file."""
    sd = _open_sd(path)
    try:
        infos = {}
        for index in range(sd.info()[0]):
            sds = sd.select(index)
            name, rank, dims, dtype, _ = sds.info()
            infos[sds.ref()] = (name, tuple(dims[:2]) if rank >= 2 else
                                tuple(dims), _HDF_DTYPES.get(dtype, "float64"),
                                tuple(sds.attributes().items()))
            sds.endaccess()
    finally:
        sd.end()
    return infos


def _vgroups(path: str) -> dict:
    """``{ref: (name, class, [(tag, ref), ...])}`` of every Vgroup."""
    import pyhdf.V  # noqa: F401  (HDF.vgstart needs the module loaded)
    from pyhdf.error import HDF4Error
    from pyhdf.HDF import HDF

    hdf = HDF(path)
    vgs = hdf.vgstart()
    groups, ref = {}, -1
    try:
        while True:
            try:
                ref = vgs.getid(ref)
            except HDF4Error:  # no more Vgroups
                break
            vg = vgs.attach(ref)
            groups[ref] = (vg._name, vg._class, vg.tagrefs())
            vg.detach()
    finally:
        vgs.end()
        hdf.close()
    return groups


def hdf_layout(path: str) -> dict:
    """Swath fields of the HDF-EOS2 file at `path` (cached per mtime)."""
    with _HDF4_LOCK:
        return _layout(os.path.abspath(path), os.path.getmtime(path))


def _global_texts(path: str) -> dict:
    """ODL texts of the metadata global attributes, by attribute name."""
    with _HDF4_LOCK:
        sd = _open_sd(path)
        try:
            attrs = sd.attributes()
        finally:
            sd.end()
    return {name: str(value) for name, value in attrs.items()
            if re.match(r"(core|product|archive)metadata|structmetadata",
                        name, re.IGNORECASE)}


@dataclass(frozen=True)
class HdfSdsSource(RasterSource):
    """One field of an HDF-EOS2 swath, read with pyhdf (no GDAL HDF4).

    The file is opened inside `read`, so the source pickles to Dask workers.
    `georef` is required: HDF-EOS2 swaths carry no affine transform, the
    reader derives it from the product metadata.
    """

    swath: str = ""
    """Swath name, e.g. "VNIR_Swath" ("" for a file without swaths)."""
    field: str = ""
    """Data field name, e.g. "ImageData3N"."""

    def open_georef(self) -> Georef:
        """Georeferencing given by the reader."""
        if self.georef is None:
            raise ProductError(
                f"{self.path}: {self.swath}/{self.field} has no "
                "georeferencing; open the file with lithomap's ASTER reader")
        return self.georef

    def _info(self) -> FieldInfo:
        fields = hdf_layout(self.path).get(self.swath, {})
        info = fields.get("Data Fields", {}).get(self.field)
        if info is None:
            raise ProductError(f"{self.path}: no field {self.field} in swath "
                               f"{self.swath or '(none)'}")
        return info

    def read(self, window: Window) -> np.ndarray:
        """Values of `window`; outside the field reads 0 (boundless)."""
        info = self._info()
        row0, col0 = int(round(window.row_off)), int(round(window.col_off))
        height, width = int(round(window.height)), int(round(window.width))
        out = np.zeros((height, width), dtype=info.dtype)
        rows, cols = info.shape
        r0, r1 = max(row0, 0), min(row0 + height, rows)
        c0, c1 = max(col0, 0), min(col0 + width, cols)
        if r1 <= r0 or c1 <= c0:
            return out
        with _HDF4_LOCK:
            sd = _open_sd(self.path)
            try:
                sds = sd.select(sd.reftoindex(info.ref))
                out[r0 - row0:r1 - row0, c0 - col0:c1 - col0] = (
                    sds[r0:r1, c0:c1])
                sds.endaccess()
            finally:
                sd.end()
        return out


def _read_field(path: str, swath: str, group: str, name: str) -> np.ndarray:
    """Whole field `name` of `group` in `swath` (small geolocation arrays)."""
    info = hdf_layout(path)[swath][group][name]
    with _HDF4_LOCK:
        sd = _open_sd(path)
        try:
            sds = sd.select(sd.reftoindex(info.ref))
            values = np.asarray(sds[:])
            sds.endaccess()
        finally:
            sd.end()
    return values


# --------------------------------------------------------------------------
# Time, sun and radiometry


def _parse_date(value) -> dt.datetime | None:
    """UTC datetime of "20060504", "2006-05-04", "2006-05-04T18:27:44Z"."""
    if value is None:
        return None
    text = str(value).strip().strip('"')
    digits = re.sub(r"[^0-9]", "", text.split("T")[0])
    if len(digits) != 8:
        return None
    day = dt.datetime.strptime(digits, "%Y%m%d")
    time = text.split("T")[1] if "T" in text else ""
    return _with_time(day, time)


def _with_time(day: dt.datetime, time) -> dt.datetime:
    """`day` at the time of day "18:27:44.123Z" or "182744123" (UTC)."""
    digits = re.sub(r"[^0-9]", "", str(time or ""))[:6].ljust(6, "0")
    hms = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    if hms[0] > 23 or hms[1] > 59 or hms[2] > 60:
        hms = (0, 0, 0)
    return day.replace(hour=hms[0], minute=hms[1], second=min(hms[2], 59),
                       tzinfo=dt.timezone.utc)


def _date_from_name(path: str) -> dt.datetime | None:
    """Acquisition time in an LP DAAC granule name (AST_L1T_003MMDDYYYY...)."""
    match = re.search(r"AST_\w+?_\d{3}(\d{2})(\d{2})(\d{4})(\d{6})",
                      os.path.basename(path), re.IGNORECASE)
    if not match:
        return None
    month, day, year, time = match.groups()
    try:
        stamp = dt.datetime(int(year), int(month), int(day))
    except ValueError:
        return None
    return _with_time(stamp, time)


def acquisition_time(meta: Metadata, path: str) -> dt.datetime | None:
    """When the scene was acquired: metadata first, then the file name."""
    calendar = _parse_date(meta.first("CALENDARDATE"))
    if calendar is not None:
        return _with_time(calendar, meta.first("TIMEOFDAY"))
    for value, _ in meta.values("SETTINGTIMEOFPOINTING"):
        found = _parse_date(value)
        if found is not None:
            return found
    return _date_from_name(path)


def earth_sun_distance(when: dt.date) -> float:
    """Earth-Sun distance in astronomical units on the day `when`.

    The first-order approximation ``1 - 0.01672 cos(0.9856 (doy - 4))``
    (degrees; eccentricity 0.01672, perihelion near 4 January), as the LP
    DAAC's AST_L1T reflectance tutorial uses; within 0.02 % of an ephemeris.
    """
    doy = when.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def sun_direction(meta: Metadata) -> tuple[float, float] | None:
    """(azimuth, elevation) in degrees from SOLARDIRECTION, or None."""
    value = meta.first("SOLARDIRECTION")
    if isinstance(value, str):
        value = tuple(float(v) for v in value.split(","))
    if isinstance(value, tuple) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None


def dn_scale(path: str, band: str, gain: str | None, acquired, elevation):
    """Factor turning ``DN - 1`` of an L1T `band` into reflectance.

    For TIR bands the factor gives radiance (W m-2 sr-1 um-1) instead.

    Raises
    ------
    ProductError
        Unknown gain code, no sun elevation, or no acquisition date.
    """
    if band in TIR:
        # TODO: brightness temperature (Planck inversion) is not linear in
        # DN, so it does not fit BandSource; TIR stays radiance for now.
        return UCC[band]["NOR"]
    code = _check_gain(path, band, gain)
    if elevation is None:
        raise ProductError(
            f"{path}: band {band}: the metadata give no solar angles "
            "(SOLARDIRECTION = azimuth, elevation), needed for reflectance; "
            "use the product's own metadata or set the reader option "
            "sun_elevation (degrees)")
    if acquired is None:
        raise ProductError(
            f"{path}: band {band}: no acquisition date in the metadata or "
            "the file name, needed for the Earth-Sun distance; set the "
            "reader option acquired (e.g. '2006-05-04')")
    if not 0 < elevation <= 90:
        raise ProductError(
            f"{path}: band {band}: sun elevation {elevation} deg is not in "
            "(0, 90]; a night scene has no reflectance")
    dist = earth_sun_distance(acquired)
    return (UCC[band][code] * math.pi * dist ** 2
            / (ESUN[band] * math.sin(math.radians(elevation))))


def _check_gain(path: str, band: str, gain: str | None) -> str:
    """The gain code of `band`, validated against the UCC table."""
    if gain is None:
        raise ProductError(
            f"{path}: band {band}: no GAIN entry for '{_gain_key(band)}' in "
            "the metadata (productmetadata.0 GAININFORMATION, or the .met "
            "file of an export); set the reader option gains, e.g. "
            "{'1': 'HGH', '4': 'NOR'}")
    code = gain.strip().upper()
    if code == "LOW" and band in VNIR:
        code = "LO1"  # VNIR writes its only low gain as "LOW"
    if code == "OFF":
        raise ProductError(f"{path}: band {band}: gain is OFF, the band was "
                           "not acquired; drop it from the region's 'bands'")
    if code not in UCC[band]:
        known = ", ".join(UCC[band]) + (" (LOW)" if band in VNIR else "")
        raise ProductError(
            f"{path}: band {band}: gain code {gain!r} is unknown; expected "
            f"one of {known}")
    return code


# --------------------------------------------------------------------------
# Georeferencing


def _utm_crs(zone: int, south: bool) -> CRS:
    return CRS.from_epsg((32700 if south else 32600) + int(zone))


def _pair(value):
    if isinstance(value, str):
        value = tuple(float(v) for v in value.split(","))
    return tuple(float(v) for v in value) if value is not None else None


def georef_from_corners(meta: Metadata, path: str, subsystem: str,
                        shape: tuple) -> Georef | None:
    """North-up UTM grid of an L1T subsystem from its corner metadata.

    ``UPPERLEFTM`` holds (northing, easting) of the centre of the upper-left
    pixel, shared by all subsystems, as the LP DAAC's hdf2tif tool reads it;
    each subsystem has its nominal pixel size. Southern scenes may store
    northings without the false northing (negative); it is added back.
    """
    upper_left = _pair(meta.first("UPPERLEFTM", subsystem))
    zone = meta.first("UTMZONENUMBER", subsystem) or meta.first(
        "UTMZONECODE", subsystem)
    if upper_left is None or zone is None:
        return None
    north_bound = meta.first("NORTHBOUNDINGCOORDINATE")
    south = int(zone) < 0 or upper_left[0] < 0 or (
        north_bound is not None and float(north_bound) < 0)
    northing, easting = upper_left
    if south and northing < 0:
        northing += 10_000_000.0
    res = _pixel_size(meta, subsystem)
    _check_extent(meta, path, subsystem, shape, res)
    transform = Affine(res, 0.0, easting - res / 2, 0.0, -res,
                       northing + res / 2)
    log.debug("%s: %s grid from UPPERLEFTM, UTM zone %s%s, %g m", path,
              subsystem, abs(int(zone)), "S" if south else "N", res)
    return Georef(_utm_crs(abs(int(zone)), south), transform, shape[1],
                  shape[0])


def _pixel_size(meta: Metadata, subsystem: str) -> float:
    """Pixel size of `subsystem`: SPATIALRESOLUTION (VNIR, SWIR, TIR), else
    the nominal 15, 30 or 90 m."""
    found = meta.first("SPATIALRESOLUTION")
    order = ("VNIR", "SWIR", "TIR")
    if isinstance(found, tuple) and len(found) == 3:
        return float(found[order.index(subsystem)])
    return RES_M[subsystem]


def _check_extent(meta, path, subsystem, shape, res):
    """Warn when LOWERRIGHTM disagrees with the image size by a pixel."""
    upper_left = _pair(meta.first("UPPERLEFTM", subsystem))
    lower_right = _pair(meta.first("LOWERRIGHTM", subsystem))
    if lower_right is None:
        return
    width_m = lower_right[1] - upper_left[1]
    expected = (shape[1] - 1) * res
    if abs(width_m - expected) >= res:
        log.warning("%s: %s: the corners are %.0f m apart, %d pixels of "
                    "%g m span %.0f m; using the nominal pixel size",
                    path, subsystem, width_m, shape[1], res, expected)


def geodetic_latitude(geocentric_deg):
    """Geodetic latitude (WGS84) of a geocentric latitude, in degrees.

    ASTER Level-1A/1B geolocation fields (and the products made from them)
    hold geocentric latitude; projecting it as geodetic shifts mid-latitude
    scenes by up to 20 km.
    """
    phi = np.radians(np.asarray(geocentric_deg, dtype=float))
    return np.degrees(np.arctan(np.tan(phi) / (1.0 - WGS84_E2)))


def _swath_node(struct_text: str, swath: str) -> OdlNode | None:
    """The SWATH_n group of StructMetadata.0 whose SwathName is `swath`."""
    for _, node in parse_odl(struct_text).walk():
        if node.kind == "GROUP" and node.attrs.get("SWATHNAME") == swath:
            return node
    return None


def _dim_lists(swath_node: OdlNode) -> tuple[dict, dict]:
    """Dimension maps ``{(geo, data): (offset, increment)}`` and DimLists."""
    maps, dims = {}, {}
    for _, node in swath_node.walk():
        attrs = node.attrs
        if "GEODIMENSION" in attrs:
            maps[(attrs["GEODIMENSION"], attrs["DATADIMENSION"])] = (
                attrs.get("OFFSET", 0), attrs["INCREMENT"])
        name = attrs.get("GEOFIELDNAME") or attrs.get("DATAFIELDNAME")
        if name and "DIMLIST" in attrs:
            dim_list = attrs["DIMLIST"]
            dims[name] = (dim_list if isinstance(dim_list, tuple)
                          else (dim_list,))
    return maps, dims


def georef_from_geolocation(path: str, swath: str, field: str,
                            shape: tuple, meta: Metadata,
                            struct_text: str) -> Georef:
    """UTM affine grid fitted to the swath's Latitude/Longitude points.

    Used for products without UTM corner metadata (AST_07XT). The points
    sit at data rows ``offset + k * increment`` of the StructMetadata
    dimension maps (evenly from corner to corner when there is none). The
    fitted transform may be rotated (path-oriented scenes).
    """
    from rasterio.warp import transform as warp_points

    try:
        lat = _read_field(path, swath, "Geolocation Fields", "Latitude")
        lon = _read_field(path, swath, "Geolocation Fields", "Longitude")
    except KeyError as exc:
        raise ProductError(
            f"{path}: {swath} has neither UTM corners (UPPERLEFTM, "
            "UTMZONENUMBER) nor Latitude/Longitude geolocation fields; "
            "cannot place it on a grid") from exc
    rows, cols = _geolocation_pixels(struct_text, swath, field,
                                     lat.shape, shape)
    lat = geodetic_latitude(lat)
    zone = meta.first("UTMZONECODE", swath) or meta.first("UTMZONENUMBER")
    if zone is None:
        zone = math.floor((float(np.mean(lon)) + 180.0) / 6.0) % 60 + 1
    crs = _utm_crs(abs(int(zone)), float(np.mean(lat)) < 0)
    xs, ys = warp_points("EPSG:4326", crs, lon.ravel().tolist(),
                         lat.ravel().tolist())
    design = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5,
                              np.ones(cols.size)])
    coef_x, res_x, *_ = np.linalg.lstsq(design, np.asarray(xs), rcond=None)
    coef_y, res_y, *_ = np.linalg.lstsq(design, np.asarray(ys), rcond=None)
    rms = math.sqrt((float(np.sum(res_x)) + float(np.sum(res_y)))
                    / max(cols.size, 1))
    pixel = math.hypot(coef_x[0], coef_y[0])
    if rms > 0.25 * pixel:
        log.warning("%s: %s: geolocation departs from an affine grid by "
                    "%.1f m RMS (%.2f px); placement is approximate",
                    path, swath, rms, rms / pixel)
    transform = Affine(coef_x[0], coef_x[1], coef_x[2],
                       coef_y[0], coef_y[1], coef_y[2])
    log.debug("%s: %s grid fitted to %d geolocation points, %.1f m RMS",
              path, swath, cols.size, rms)
    return Georef(crs, transform, shape[1], shape[0])


def _geolocation_pixels(struct_text, swath, field, geo_shape, data_shape):
    """Data (rows, cols) of each geolocation point, as 2-D arrays."""
    node = _swath_node(struct_text, swath) if struct_text else None
    maps, dims = _dim_lists(node) if node is not None else ({}, {})
    geo_dims = dims.get("Latitude", ())
    data_dims = dims.get(field, ())
    steps = [maps.get(pair) for pair in zip(geo_dims, data_dims,
                                            strict=False)]
    k_rows = np.arange(geo_shape[0], dtype=float)
    k_cols = np.arange(geo_shape[1], dtype=float)
    if len(steps) == 2 and all(steps):
        rows = steps[0][0] + k_rows * steps[0][1]
        cols = steps[1][0] + k_cols * steps[1][1]
    else:
        log.debug("%s: no dimension map; geolocation taken as evenly spread "
                  "from corner to corner", swath)
        rows = k_rows * (data_shape[0] - 1) / max(geo_shape[0] - 1, 1)
        cols = k_cols * (data_shape[1] - 1) / max(geo_shape[1] - 1, 1)
    return np.meshgrid(rows, cols, indexing="ij")


# --------------------------------------------------------------------------
# Band selection and the SWIR failure


def _wanted_bands(bands, include_tir: bool) -> list:
    if bands is None:
        return DEFAULT_BANDS + (list(TIR) if include_tir else [])
    wanted = [band_name(b) for b in bands]
    duplicates = {b for b in wanted if wanted.count(b) > 1}
    if duplicates:
        raise ProductError(f"bands: {sorted(duplicates)} asked for twice")
    return wanted


def _swir_policy(path: str, wanted: list, acquired, exclude: bool) -> list:
    """Bands to read once the SWIR failure is taken into account."""
    swir = [b for b in wanted if b in SWIR]
    if not swir or acquired is None or acquired < SWIR_FAILURE_DATE:
        return wanted
    what = ("dropped (exclude_failed_swir is set)" if exclude else
            "kept, but hold saturated, striped values; set the reader "
            "option exclude_failed_swir: true to drop them")
    message = (f"{path}: scene acquired {acquired:%Y-%m-%d}, after the ASTER "
               f"SWIR detectors failed ({SWIR_FAILURE_DATE:%Y-%m}); SWIR "
               f"band(s) {', '.join(swir)} {what}")
    log.warning(message)
    warnings.warn(message, SwirFailureWarning, stacklevel=3)
    if not exclude:
        return wanted
    kept = [b for b in wanted if b not in SWIR]
    if not kept:
        raise ProductError(f"{path}: only SWIR bands were asked for and "
                           "exclude_failed_swir drops them all")
    return kept


# --------------------------------------------------------------------------
# AST_L1T HDF


def _open_l1t(path: str, wanted: list, options: dict) -> Product:
    layout = hdf_layout(path)
    texts = _global_texts(path)
    meta = _hdf_metadata(path)
    acquired = _option_time(options) or acquisition_time(meta, path)
    wanted = _swir_policy(path, wanted, acquired,
                          options["exclude_failed_swir"])
    gains = {**meta.gains(), **_option_gains(options)}
    sun = sun_direction(meta)
    elevation = options.get("sun_elevation") or (sun[1] if sun else None)
    georefs, bands = {}, {}
    for band in wanted:
        subsystem = SUBSYSTEM[band]
        swath = L1T_SWATH[subsystem]
        info = _l1t_field(path, layout, band, swath)
        if subsystem not in georefs:
            georefs[subsystem] = _l1t_georef(meta, path, band, swath,
                                             info.shape, texts)
        scale = dn_scale(path, band, gains.get(_gain_key(band)), acquired,
                         elevation)
        raster = HdfSdsSource(path, georef=georefs[subsystem], swath=swath,
                              field=f"ImageData{band}")
        saturated = 255 if info.dtype == "uint8" else 4095
        bands[band] = BandSource(band, raster, scale=scale, offset=-scale,
                                 nodata=(0,), valid_range=(1, saturated - 1))
    log.info("%s: AST_L1T, %d band(s) %s, acquired %s", path, len(bands),
             ",".join(bands), acquired)
    return Product(
        "aster", path, _scene_id(meta, path), bands, acquired=acquired,
        metadata=_l1t_metadata(gains, sun, elevation, acquired, wanted))


def _l1t_field(path, layout, band, swath) -> FieldInfo:
    if swath not in layout:
        held = ", ".join(sorted(s for s in layout if s)) or "no swaths"
        raise ProductError(
            f"{path}: band {band}: the file has no {swath} (it holds "
            f"{held}); this scene was acquired without that subsystem. "
            "Drop the band from the region's 'bands' list")
    info = layout[swath].get("Data Fields", {}).get(f"ImageData{band}")
    if info is None:
        held = ", ".join(sorted(layout[swath].get("Data Fields", {})))
        raise ProductError(
            f"{path}: band {band}: no ImageData{band} in {swath} (it holds "
            f"{held}); drop the band from the region's 'bands' list")
    return info


def _l1t_georef(meta, path, band, swath, shape, texts) -> Georef:
    subsystem, field = SUBSYSTEM[band], f"ImageData{band}"
    georef = georef_from_corners(meta, path, subsystem, shape)
    if georef is None:
        georef = georef_from_geolocation(path, swath, field, shape, meta,
                                         texts.get("StructMetadata.0", ""))
    return georef


def _l1t_metadata(gains, sun, elevation, acquired, wanted) -> dict:
    reflective = [b for b in wanted if b not in TIR]
    return {
        "product": "AST_L1T",
        "gains": {b: gains.get(_gain_key(b)) for b in reflective},
        "sun_azimuth_deg": sun[0] if sun else None,
        "sun_elevation_deg": elevation,
        "earth_sun_distance_au": (earth_sun_distance(acquired)
                                  if acquired else None),
        "esun": {b: ESUN[b] for b in reflective},
        "units": {b: "W m-2 sr-1 um-1" if b in TIR else "reflectance (TOA)"
                  for b in wanted},
    }


def _scene_id(meta: Metadata | None, path: str) -> str:
    found = meta.first("LOCALGRANULEID") if meta else None
    name = str(found) if found else os.path.basename(path.rstrip("/"))
    return re.sub(r"\.(hdf|zip|tif)$", "", name, flags=re.IGNORECASE)


def _option_gains(options) -> dict:
    return {_gain_key(band_name(b)): str(code).upper()
            for b, code in (options.get("gains") or {}).items()}


def _option_time(options):
    value = options.get("acquired")
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(
            tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day,
                           tzinfo=dt.timezone.utc)
    found = _parse_date(value)
    if found is None:
        raise ProductError(f"acquired: expected a date like '2006-05-04'. "
                           f"Received: {value!r}")
    return found


# --------------------------------------------------------------------------
# AST_07XT HDF


def _granule_key(name: str) -> str | None:
    """Acquisition part of an LP DAAC granule name (shared by VNIR/SWIR)."""
    match = re.match(r"(AST_\w+?_\d{17})", os.path.basename(name),
                     re.IGNORECASE)
    return match.group(1).upper() if match else None


def _srf_files(path: str) -> list:
    """The AST_07XT file(s) of the scene `path` points at."""
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    candidates = sorted(glob.glob(os.path.join(folder, "*.hdf")))
    key = None if os.path.isdir(path) else _granule_key(path)
    if key is None and not os.path.isdir(path):
        return [path]
    if key is None:
        keys = {_granule_key(c) for c in candidates}
        if len(keys) != 1:
            raise ProductError(
                f"{path}: the folder holds {len(candidates)} HDF file(s) of "
                f"{len(keys)} scene(s); point the scene's 'path' at one file")
        key = keys.pop()
    return [c for c in candidates if _granule_key(c) == key]


def _open_srf(path: str, wanted: list, options: dict) -> Product:
    files = _srf_files(path)
    swaths = {}
    for file in files:
        for swath, groups in hdf_layout(file).items():
            swaths.setdefault(swath, (file, groups))
    meta = _hdf_metadata(files[0])
    acquired = _option_time(options) or acquisition_time(meta, files[0])
    wanted = _swir_policy(path, wanted, acquired,
                          options["exclude_failed_swir"])
    georefs, bands = {}, {}
    for band in wanted:
        file, swath, info = _srf_field(path, files, swaths, band)
        if swath not in georefs:
            georefs[swath] = _srf_georef(file, swath, f"Band{band}",
                                         SUBSYSTEM[band], info.shape)
        # TODO: the AST_07XT QA data planes are not read into masks; only
        # fill (0, or the SDS _FillValue) and negative values are masked.
        attrs = dict(info.attrs)
        nodata = (0,) + ((attrs["_FillValue"],) if "_FillValue" in attrs
                         else ())
        raster = HdfSdsSource(file, georef=georefs[swath], swath=swath,
                              field=f"Band{band}")
        bands[band] = BandSource(band, raster, scale=SRF_SCALE,
                                 nodata=nodata, valid_range=(1, 32767))
    log.info("%s: AST_07XT, %d band(s) %s from %d file(s)", path, len(bands),
             ",".join(bands), len(files))
    return Product("aster", path, _scene_id(meta, files[0]), bands,
                   acquired=acquired,
                   metadata={"product": "AST_07XT", "scale": SRF_SCALE,
                             "files": files})


def _srf_field(path, files, swaths, band):
    """(file, swath, FieldInfo) of an AST_07XT band, or a clear error."""
    subsystem = SUBSYSTEM[band]
    if subsystem == "TIR":
        raise ProductError(
            f"{path}: band {band}: AST_07XT has no TIR bands (they are in "
            "AST_05/AST_08); drop it from the region's 'bands'")
    swath = SRF_SWATH[subsystem]
    if swath not in swaths:
        raise ProductError(
            f"{path}: band {band}: no {swath} swath in "
            f"{', '.join(os.path.basename(f) for f in files)}; the "
            f"{subsystem} file of this AST_07XT granule is missing")
    file, groups = swaths[swath]
    info = groups.get("Data Fields", {}).get(f"Band{band}")
    if info is None:
        raise ProductError(f"{file}: band {band}: no field Band{band} in "
                           f"{swath}")
    return file, swath, info


def _hdf_metadata(path: str) -> Metadata:
    """Metadata of the ODL global attributes (not StructMetadata)."""
    texts = _global_texts(path)
    return Metadata.from_odl({k: v for k, v in texts.items()
                              if not k.lower().startswith("struct")})


def _srf_georef(file, swath, field, subsystem, shape) -> Georef:
    meta = _hdf_metadata(file)
    texts = _global_texts(file)
    georef = georef_from_corners(meta, file, subsystem, shape)
    if georef is None:
        georef = georef_from_geolocation(file, swath, field, shape, meta,
                                         texts.get("StructMetadata.0", ""))
    return georef


# --------------------------------------------------------------------------
# GeoTIFF exports

_BAND_IN_NAME = re.compile(
    r"(?:imagedata|band|(?<![a-z])b)_?0?(3n|3b|1[0-4]|[1-9])(?![0-9])",
    re.IGNORECASE)


def export_band(filename: str) -> str | None:
    """Band of an exported GeoTIFF, from its file name (None if unknown)."""
    stem = os.path.splitext(os.path.basename(filename))[0]
    matches = _BAND_IN_NAME.findall(stem.replace("-", "_"))
    if not matches:
        return None
    return band_name(matches[-1]) if matches[-1].upper() != "3B" else None


# TODO: the multi-band full-resolution composites of AST_L1T (*_V.tif,
# *_T.tif) are not matched to bands; only one-band-per-file exports are.
def _export_kind(names: list, option: str | None, path: str) -> str:
    if option:
        kind = option.upper().replace("AST_", "")
        if kind not in ("L1T", "07XT"):
            raise ProductError(f"product: expected 'L1T' or '07XT'. "
                               f"Received: {option!r}")
        return kind
    joined = " ".join(os.path.basename(n).upper() for n in names)
    if re.search(r"SURFACEREFLECTANCE|AST_07|_SRF", joined):
        return "07XT"
    if re.search(r"IMAGEDATA|AST_L1T", joined):
        return "L1T"
    raise ProductError(
        f"{path}: cannot tell from the file names whether these GeoTIFFs "
        "are AST_L1T (DN) or AST_07XT (surface reflectance); set the reader "
        "option product: L1T or 07XT")


def _export_members(path: str):
    """(GDAL paths of .tif members, {metadata name: text}) of an export."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            texts = {n: archive.read(n).decode("utf-8", "replace")
                     for n in names if re.search(r"\.(met|xml|txt)$", n,
                                                 re.IGNORECASE)}
        tifs = [f"/vsizip/{path}/{n}" for n in names
                if re.search(r"\.tiff?$", n, re.IGNORECASE)]
        return sorted(tifs), texts
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    files = sorted(os.listdir(folder))
    tifs = [os.path.join(folder, n) for n in files
            if re.search(r"\.tiff?$", n, re.IGNORECASE)]
    texts = {}
    for name in files:
        if re.search(r"\.(met|xml|txt)$", name, re.IGNORECASE):
            with open(os.path.join(folder, name), encoding="utf-8",
                      errors="replace") as handle:
                texts[name] = handle.read()
    return tifs, texts


def _export_metadata(texts: dict) -> Metadata:
    entries = []
    for name, text in texts.items():
        try:
            if text.lstrip().startswith("<"):
                entries += _xml_metadata(text)
            else:
                entries += Metadata.from_odl({name: text}).entries
        except ET.ParseError as exc:
            log.warning("%s: not readable as XML metadata (%s); skipped",
                        name, exc)
    return Metadata(entries, texts)


def _open_exports(path: str, wanted: list, options: dict) -> Product:
    tifs, texts = _export_members(path)
    by_band = {}
    for tif in tifs:
        band = export_band(tif)
        if band is not None:
            by_band.setdefault(band, tif)
    kind = _export_kind(tifs, options.get("product"), path)
    meta = _export_metadata(texts)
    acquired = (_option_time(options) or acquisition_time(meta, path)
                or next(filter(None, map(_date_from_name, tifs)), None))
    wanted = _swir_policy(path, wanted, acquired,
                          options["exclude_failed_swir"])
    missing = [b for b in wanted if b not in by_band]
    if missing:
        raise ProductError(
            f"{path}: band {', '.join(missing)}: no GeoTIFF named for it "
            f"(found bands {', '.join(sorted(by_band)) or 'none'}); expected "
            "names like *_ImageData3N.tif or *_SurfaceReflectanceVNIR_Band1"
            ".tif")
    gains = {**meta.gains(), **_option_gains(options)}
    sun = sun_direction(meta)
    elevation = options.get("sun_elevation") or (sun[1] if sun else None)
    bands = {}
    for band in wanted:
        raster = RasterSource(by_band[band])
        if kind == "07XT":
            bands[band] = BandSource(band, raster, scale=SRF_SCALE,
                                     nodata=(0,), valid_range=(1, 32767))
            continue
        bands[band] = _export_l1t_band(path, band, raster, gains, acquired,
                                       elevation)
    log.info("%s: AST_%s GeoTIFF export, %d band(s) %s", path, kind,
             len(bands), ",".join(bands))
    metadata = ({"product": "AST_07XT", "scale": SRF_SCALE} if kind == "07XT"
                else _l1t_metadata(gains, sun, elevation, acquired, wanted))
    metadata["export"] = True
    return Product("aster", path, _export_scene_id(meta, tifs, path), bands,
                   acquired=acquired, metadata=metadata)


def _export_scene_id(meta: Metadata, tifs: list, path: str) -> str:
    """Granule id of an export: the .met's, else the band files' prefix."""
    if meta.first("LOCALGRANULEID"):
        return _scene_id(meta, path)
    stem = os.path.splitext(os.path.basename(tifs[0]))[0] if tifs else ""
    prefix = re.split(r"_(?:ImageData|SurfaceReflectance|VNIR|SWIR|TIR|B\d)",
                      stem, maxsplit=1, flags=re.IGNORECASE)[0]
    return prefix or _scene_id(None, path)


def _export_l1t_band(path, band, raster, gains, acquired, elevation):
    with rasterio.open(raster.path) as src:
        dtype = src.dtypes[0]
    where = f"{path} ({os.path.basename(raster.path)})"
    if dtype.startswith("float"):
        # Already radiance (some tools convert): only the solar step is left.
        factor = dn_scale(where, band, "NOR", acquired, elevation)
        scale = factor / UCC[band]["NOR"] if band not in TIR else 1.0
        log.info("%s: band %s is %s, taken as radiance", path, band, dtype)
        return BandSource(band, raster, scale=scale, nodata=(0,))
    scale = dn_scale(where, band, gains.get(_gain_key(band)), acquired,
                     elevation)
    saturated = 255 if dtype == "uint8" else 4095
    return BandSource(band, raster, scale=scale, offset=-scale, nodata=(0,),
                      valid_range=(1, saturated - 1))


# --------------------------------------------------------------------------
# Entry point


def _hdf_kind(path: str) -> str:
    swaths = set(hdf_layout(path))
    if swaths & set(SRF_SWATH.values()):
        return "07XT"
    if swaths & set(L1T_SWATH.values()):
        return "L1T"
    raise ProductError(
        f"{path}: an HDF file without ASTER swaths (found "
        f"{', '.join(sorted(swaths)) or 'none'}); expected AST_L1T "
        "(VNIR_Swath, SWIR_Swath) or AST_07XT (SurfaceReflectanceVNIR)")


def _resolve(path: str) -> tuple[str, str]:
    """(kind, path): "L1T", "07XT" (HDF) or "export" (GeoTIFFs)."""
    if os.path.isdir(path):
        hdfs = sorted(glob.glob(os.path.join(path, "*.hdf")))
        if hdfs:
            kinds = {_hdf_kind(h) for h in hdfs}
            if kinds == {"07XT"}:
                return "07XT", path
            if len(hdfs) == 1:
                return kinds.pop(), hdfs[0]
            raise ProductError(
                f"{path}: the folder holds {len(hdfs)} ASTER HDF files; "
                "point the scene's 'path' at one of them")
        if glob.glob(os.path.join(path, "*.tif*")):
            return "export", path
        raise ProductError(f"{path}: no .hdf or .tif files in this folder")
    if re.search(r"\.(tiff?|zip)$", path, re.IGNORECASE):
        return "export", path
    return _hdf_kind(path), path


def open_product(path: str, bands=None, *, include_tir: bool = False,
                 exclude_failed_swir: bool = False, gains: dict | None = None,
                 sun_elevation: float | None = None, acquired=None,
                 product: str | None = None, **unknown) -> Product:
    """Open an ASTER scene: an AST_L1T or AST_07XT HDF, or GeoTIFF exports.

    Parameters
    ----------
    path : str
        An ``.hdf`` file, the folder of an AST_07XT granule (VNIR and SWIR
        files), or a folder or ``.zip`` of per-band GeoTIFFs.
    bands : list of str, optional
        Bands to read ("1", "3N", "B04"...). Default: `DEFAULT_BANDS`, plus
        TIR when `include_tir`.
    include_tir : bool, default=False
        Add TIR bands 10-14 (L1T only; radiance, not reflectance) to the
        default band list. An explicit `bands` list is used as given.
    exclude_failed_swir : bool, default=False
        Drop SWIR bands of scenes acquired after the SWIR failure
        (`SWIR_FAILURE_DATE`) instead of only warning.
    gains : dict, optional
        Gain code by band ({"1": "HGH", "4": "NOR"}); overrides the
        metadata. Needed for L1T GeoTIFF exports without a .met file.
    sun_elevation : float, optional
        Sun elevation in degrees; overrides SOLARDIRECTION.
    acquired : str or datetime, optional
        Acquisition date; overrides the metadata and the file name.
    product : {"L1T", "07XT"}, optional
        Kind of GeoTIFF export, when the file names do not tell.

    Returns
    -------
    Product
        Bands in the order asked, each with its own 15, 30 or 90 m grid.

    Raises
    ------
    ProductError
        Missing band, unknown gain code, no solar angles or date, or a
        subsystem (swath) that the scene lacks; the message names the file
        and the band.
    """
    if unknown:
        raise ProductError(
            f"{path}: unknown ASTER reader option(s) {sorted(unknown)}; "
            "expected include_tir, exclude_failed_swir, gains, "
            "sun_elevation, acquired, product")
    options = {"exclude_failed_swir": bool(exclude_failed_swir),
               "gains": gains, "sun_elevation": sun_elevation,
               "acquired": acquired, "product": product}
    try:
        wanted = _wanted_bands(bands, include_tir)
    except ProductError as exc:
        raise ProductError(f"{path}: {exc}") from None
    kind, resolved = _resolve(path)
    log.debug("%s: read as %s, bands %s", path, kind, wanted)
    if kind == "L1T":
        return _open_l1t(resolved, wanted, options)
    if kind == "07XT":
        return _open_srf(resolved, wanted, options)
    return _open_exports(resolved, wanted, options)
