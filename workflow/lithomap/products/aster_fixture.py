"""Small synthetic ASTER products laid out as the LP DAAC ships them.

No real ASTER file could be used in the project, so tests and the demo
region use files written here. They follow the structure of AST_L1T and
AST_07XT as HDF-EOS2 swath files, so that a real file read by the same code
behaves the same:

- one Vgroup of class ``SWATH`` per subsystem (``VNIR_Swath``,
  ``SWIR_Swath``, ``TIR_Swath``; ``SurfaceReflectanceVNIR``,
  ``SurfaceReflectanceSWIR``), each holding the Vgroups ``Geolocation
  Fields`` (11 x 11 ``Latitude``/``Longitude``, geocentric latitude as in
  ASTER Level-1), ``Data Fields`` (``ImageData1`` .. ``ImageData14``;
  ``Band1`` .. ``Band9``) and ``Swath Attributes``;
- SDS dimensions named ``ImageLine:VNIR_Swath`` etc., and the global
  attribute ``StructMetadata.0`` describing dimensions, dimension maps
  (``GeoTrack`` -> ``ImageLine``, offset 0, increment (n - 1) / 10) and
  fields;
- ODL global attributes ``coremetadata.0`` (granule id, ``CALENDARDATE``,
  ``TIMEOFDAY``, bounding rectangle) and ``productmetadata.0``
  (``SOLARDIRECTION``, ``GAIN = ("01", "HGH")`` objects in the group
  ``GAININFORMATION``, ``SETTINGTIMEOFPOINTING``, and for L1T the map grid:
  ``UPPERLEFTM``/``LOWERRIGHTM`` as (northing, easting) of the corner pixel
  centres and ``UTMZONENUMBER``).

The names of a few enclosing ODL groups (``MAPPROJECTIONINFORMATION``) are
placeholders where the specification text was not at hand; the reader
finds objects by name anywhere, so they do not matter to it.

Scenes are made of "rock units": Voronoi patches with wavy borders, each a
mixture of mineral spectra from the USGS Spectral Library version 7 (Kokaly
et al., 2017, public domain) convolved to the nine ASTER VNIR/SWIR bands,
with abundances that vary smoothly inside a unit, mild shading and sensor
noise. ``make_l1t(path, seed=0)`` writes the demo scene.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_points
from scipy import ndimage

from lithomap.products import aster

VNIR, SWIR, TIR = aster.VNIR, aster.SWIR, aster.TIR

# Reflectance of each mineral in ASTER bands 1, 2, 3N, 4 .. 9 (USGS splib07,
# ASTER-convolved, AREF), rounded to 3 decimals.
SPECTRA = {
    "kaolinite": (0.755, 0.769, 0.789, 0.791, 0.361, 0.353, 0.417, 0.353,
                  0.323),
    "alunite": (0.779, 0.834, 0.879, 0.807, 0.494, 0.525, 0.600, 0.524,
                0.452),
    "calcite": (0.886, 0.906, 0.923, 0.912, 0.839, 0.832, 0.734, 0.635,
                0.762),
    "dolomite": (0.805, 0.842, 0.858, 0.885, 0.855, 0.827, 0.728, 0.714,
                 0.782),
    "muscovite": (0.530, 0.604, 0.660, 0.798, 0.589, 0.437, 0.585, 0.482,
                  0.442),
    "quartz": (0.446, 0.488, 0.550, 0.644, 0.653, 0.649, 0.653, 0.651,
               0.646),
    "chlorite": (0.396, 0.423, 0.460, 0.694, 0.760, 0.750, 0.690, 0.633,
                 0.646),
    "epidote": (0.157, 0.177, 0.220, 0.317, 0.345, 0.294, 0.170, 0.105,
                0.203),
    "hematite": (0.063, 0.208, 0.264, 0.834, 0.822, 0.813, 0.802, 0.787,
                 0.768),
    "goethite": (0.085, 0.124, 0.151, 0.348, 0.365, 0.355, 0.337, 0.314,
                 0.283),
    "basalt": (0.131, 0.147, 0.163, 0.183, 0.157, 0.151, 0.145, 0.137,
               0.131),
    "dry_grass": (0.245, 0.320, 0.449, 0.557, 0.390, 0.405, 0.355, 0.319,
                  0.302),
}

UNITS = (
    ("argillic alteration", {"kaolinite": 0.45, "alunite": 0.25,
                             "quartz": 0.30}),
    ("limestone", {"calcite": 0.65, "dolomite": 0.25, "quartz": 0.10}),
    ("basalt", {"basalt": 0.70, "chlorite": 0.15, "hematite": 0.15}),
    ("sericitic quartzite", {"quartz": 0.60, "muscovite": 0.40}),
    ("greenstone", {"chlorite": 0.40, "epidote": 0.35, "basalt": 0.25}),
    ("ferruginous sandstone", {"quartz": 0.55, "goethite": 0.25,
                               "hematite": 0.20}),
    ("alluvium", {"quartz": 0.40, "dry_grass": 0.35, "calcite": 0.25}),
)
"""Rock units: name and mineral fractions (codes are 1-based positions)."""

PLACES = {
    "cuprite": {"zone": 11, "south": False,
                "upper_left": (478815.0, 4160985.0)},
    "mutawintji": {"zone": 54, "south": True,
                   "upper_left": (620415.0, 6545985.0)},
}
"""Real places in UTM: (easting, northing) of the upper-left VNIR pixel
centre, chosen so that SWIR pixel edges fall on multiples of 30 m."""

GEO_POINTS = 11
"""Geolocation points per side, as in ASTER Level-1 swaths."""


@dataclass
class Scene:
    """What a synthetic scene is, before it is written in any format."""

    acquired: dt.datetime
    """Acquisition time (UTC)."""
    zone: int
    """UTM zone number."""
    south: bool
    """Southern hemisphere (EPSG:327xx)."""
    upper_left: tuple
    """(easting, northing) of the centre of the upper-left VNIR pixel."""
    reflectance: dict
    """Band -> reflectance (VNIR, SWIR) or radiance (TIR) at native size."""
    units: np.ndarray
    """Rock unit code (1-based) of each SWIR (30 m) pixel."""
    sun_azimuth: float = 135.0
    """Degrees from north."""
    sun_elevation: float = 60.0
    """Degrees above the horizon."""
    gains: dict = field(default_factory=dict)
    """Band -> gain code for the L1T digital numbers."""
    dn: dict = field(default_factory=dict)
    """Band -> digital numbers as written (filled by the writers)."""

    @property
    def crs(self) -> CRS:
        """UTM CRS of the scene."""
        return CRS.from_epsg((32700 if self.south else 32600) + self.zone)

    def transform(self, subsystem: str) -> Affine:
        """Affine transform (pixel corners) of a subsystem's grid."""
        res = aster.RES_M[subsystem]
        east, north = self.upper_left
        return Affine(res, 0.0, east - res / 2, 0.0, -res, north + res / 2)

    @property
    def granule(self) -> str:
        """LP DAAC style granule name (without product prefix)."""
        return f"003{self.acquired:%m%d%Y%H%M%S}"


# --------------------------------------------------------------------------
# Scene synthesis


def _smooth(rng, shape, sigma):
    """Smooth random field with zero mean and unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma,
                                    mode="wrap")
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def _unit_map(rng, shape, n_units):
    """Voronoi patches with wavy borders, codes 1..n_units."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    warp = max(shape) / 12.0
    rows += warp * _smooth(rng, shape, max(shape) / 10)
    cols += warp * _smooth(rng, shape, max(shape) / 10)
    n_seeds = 2 * n_units
    seeds = rng.uniform(0, 1, (n_seeds, 2)) * np.array(shape)
    codes = np.concatenate([np.arange(n_units),
                            rng.integers(0, n_units, n_seeds - n_units)])
    dist = ((rows[None] - seeds[:, 0, None, None]) ** 2
            + (cols[None] - seeds[:, 1, None, None]) ** 2)
    return (codes[np.argmin(dist, axis=0)] + 1).astype(np.uint8)


def _unit_reflectance(rng, units, n_units, flat):
    """(9, rows, cols) reflectance of each SWIR pixel from its unit mix."""
    table = np.array([SPECTRA[m] for m in SPECTRA])
    names = list(SPECTRA)
    out = np.zeros((9,) + units.shape)
    for code in range(1, n_units + 1):
        mix = np.zeros(len(names))
        for mineral, fraction in UNITS[code - 1][1].items():
            mix[names.index(mineral)] = fraction
        inside = units == code
        if flat:
            out[:, inside] = (mix @ table)[:, None]
            continue
        # Abundances drift smoothly inside a unit (+-20 % of each mineral).
        drift = 1 + 0.2 * np.stack([_smooth(rng, units.shape, 8)[inside]
                                    for _ in names])
        weights = mix[:, None] * np.clip(drift, 0.5, 1.5)
        weights /= weights.sum(axis=0, keepdims=True)
        out[:, inside] = table.T @ weights
    return out


def synth_scene(seed: int = 0, vnir_px: int = 600, *, place="cuprite",
                acquired=dt.datetime(2005, 6, 18, 18, 45, 30),
                n_units: int = 6, flat: bool = False,
                sun=(135.0, 60.0), gains=None) -> Scene:
    """A scene of rock units, `vnir_px` x `vnir_px` VNIR pixels at 15 m.

    SWIR has half and TIR a sixth as many pixels per side (`vnir_px` must
    be a multiple of 6). `flat` makes every unit uniform, without noise or
    shading, for tests that plant sharp features.
    """
    if vnir_px % 6:
        raise ValueError(f"vnir_px: expected a multiple of 6. "
                         f"Received: {vnir_px}")
    if not 1 <= n_units <= len(UNITS):
        raise ValueError(f"n_units: expected 1 to {len(UNITS)}. "
                         f"Received: {n_units}")
    rng = np.random.default_rng(seed)
    swir_px = vnir_px // 2
    units = _unit_map(rng, (swir_px, swir_px), n_units)
    refl = _unit_reflectance(rng, units, n_units, flat)
    # Rough, varnished outcrops are darker than powders in the library.
    shading = 0.7 * (np.ones(units.shape) if flat
                     else 1 + 0.06 * _smooth(rng, units.shape, 4))
    bands = {}
    for i, band in enumerate((*VNIR, *SWIR)):
        values = refl[i] * shading
        if band in VNIR:
            values = np.kron(values, np.ones((2, 2)))
        if not flat:
            values = values + rng.normal(0, 0.004, values.shape)
        bands[band] = np.clip(values, 0.005, 1.2)
    tir_units = units[::3, ::3].astype(float)
    for i, band in enumerate(TIR):
        # Radiance near 300 K (W m-2 sr-1 um-1), a little per unit and band.
        bands[band] = 9.0 + 0.15 * tir_units + 0.1 * i
    place_info = PLACES[place]
    default_gains = {b: "NOR" for b in (*VNIR, *SWIR)}
    return Scene(acquired.replace(tzinfo=dt.timezone.utc),
                 place_info["zone"], place_info["south"],
                 place_info["upper_left"], bands, units, float(sun[0]),
                 float(sun[1]), {**default_gains, **(gains or {})})


def to_dn(scene: Scene, band: str) -> np.ndarray:
    """L1T digital numbers of `band`: the inverse of the ASTER radiometry.

    ``DN = L / UCC + 1``, ``L = rho * ESUN * sin(elevation) / (pi d^2)``;
    clipped to 1..254 (255 is saturation, 0 is fill), TIR to 1..4094.
    """
    values = scene.reflectance[band]
    if band in TIR:
        dn = np.rint(values / aster.UCC[band]["NOR"] + 1)
        return np.clip(dn, 1, 4094).astype(np.uint16)
    code = scene.gains[band].upper()
    code = "LO1" if code == "LOW" else code
    dist = aster.earth_sun_distance(scene.acquired)
    radiance = (values * aster.ESUN[band]
                * math.sin(math.radians(scene.sun_elevation))
                / (math.pi * dist ** 2))
    # A code without a coefficient (written to test the reader's error)
    # still needs some DN: those of normal gain.
    ucc = aster.UCC[band].get(code, aster.UCC[band]["NOR"])
    dn = np.rint(radiance / ucc + 1)
    return np.clip(dn, 1, 254).astype(np.uint8)


# --------------------------------------------------------------------------
# ODL text


def odl_text(items, indent: int = 0) -> str:
    """ODL text of nested items, in the layout of ECS metadata.

    Items are ``("GROUP", name, [items])`` or ``("OBJECT", name, value)``
    or ``("OBJECT", name, value, class)``; values are str, numbers or
    tuples of them.
    """
    pad = "  " * indent
    lines = []
    for item in items:
        kind, name = item[0], item[1]
        if kind == "GROUP":
            lines += [f"{pad}{'GROUP':<23}= {name}", ""]
            lines.append(odl_text(item[2], indent + 1))
            lines += [f"{pad}{'END_GROUP':<23}= {name}", ""]
            continue
        value = item[2]
        count = len(value) if isinstance(value, tuple) else 1
        lines.append(f"{pad}{'OBJECT':<23}= {name}")
        if len(item) > 3:
            lines.append(f"{pad}  {'CLASS':<21}= \"{item[3]}\"")
        lines.append(f"{pad}  {'NUM_VAL':<21}= {count}")
        lines.append(f"{pad}  {'VALUE':<21}= {_odl_format(value)}")
        lines += [f"{pad}{'END_OBJECT':<23}= {name}", ""]
    text = "\n".join(lines)
    return text + ("\nEND\n" if indent == 0 else "")


def _odl_format(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_odl_format(v) for v in value) + ")"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _drop(items, names):
    """`items` without the objects whose name is in `names`."""
    kept = []
    for item in items:
        if item[0] == "GROUP":
            kept.append(("GROUP", item[1], _drop(item[2], names)))
        elif item[1] not in names:
            kept.append(item)
    return kept


def _bounds_lonlat(scene: Scene, shape):
    """(west, south, east, north) of the VNIR footprint in degrees."""
    left, top = scene.transform("VNIR") * (0, 0)
    right, bottom = scene.transform("VNIR") * (shape[1], shape[0])
    lons, lats = warp_points(scene.crs, "EPSG:4326", [left, right],
                             [bottom, top])
    return min(lons), min(lats), max(lons), max(lats)


def core_metadata(scene: Scene, short_name: str, granule_id: str,
                  vnir_shape) -> list:
    """ECS inventory metadata items (coremetadata.0, or a .met file)."""
    west, south, east, north = _bounds_lonlat(scene, vnir_shape)
    return [("GROUP", "INVENTORYMETADATA", [
        ("GROUP", "ECSDATAGRANULE", [
            ("OBJECT", "LOCALGRANULEID", granule_id),
            ("OBJECT", "PRODUCTIONDATETIME", "2015-05-20T03:42:36.000Z"),
        ]),
        ("GROUP", "SINGLEDATETIME", [
            ("OBJECT", "CALENDARDATE", f"{scene.acquired:%Y%m%d}"),
            ("OBJECT", "TIMEOFDAY", f"{scene.acquired:%H%M%S}000000"),
        ]),
        ("GROUP", "COLLECTIONDESCRIPTIONCLASS", [
            ("OBJECT", "SHORTNAME", short_name),
            ("OBJECT", "VERSIONID", 3),
        ]),
        ("GROUP", "SPATIALDOMAINCONTAINER", [
            ("GROUP", "HORIZONTALSPATIALDOMAINCONTAINER", [
                ("GROUP", "BOUNDINGRECTANGLE", [
                    ("OBJECT", "WESTBOUNDINGCOORDINATE", round(west, 6)),
                    ("OBJECT", "NORTHBOUNDINGCOORDINATE", round(north, 6)),
                    ("OBJECT", "EASTBOUNDINGCOORDINATE", round(east, 6)),
                    ("OBJECT", "SOUTHBOUNDINGCOORDINATE", round(south, 6)),
                ]),
            ]),
        ]),
        ("GROUP", "ASSOCIATEDPLATFORMINSTRUMENTSENSOR", [
            ("OBJECT", "ASSOCIATEDPLATFORMSHORTNAME", "Terra", "1"),
            ("OBJECT", "ASSOCIATEDINSTRUMENTSHORTNAME", "ASTER", "1"),
        ]),
    ])]


def product_metadata(scene: Scene, level: str, vnir_shape,
                     with_corners: bool = True) -> list:
    """ASTER product metadata items (productmetadata.0)."""
    gains = [("OBJECT", "GAIN", (aster._gain_key(b), scene.gains[b]),
              str(i + 1)) for i, b in enumerate((*VNIR, *SWIR))
             if b in scene.gains]
    pointed = scene.acquired - dt.timedelta(minutes=4)
    pointing = [("OBJECT", "SETTINGTIMEOFPOINTING",
                 f"{pointed:%Y-%m-%dT%H:%M:%SZ}", str(i + 1))
                for i in range(3)]
    generic = [
        ("OBJECT", "ASTERSCENEID", (int(scene.acquired.year), 170, 1)),
        ("OBJECT", "PROCESSINGLEVELID", level),
        ("OBJECT", "SOLARDIRECTION", (scene.sun_azimuth, scene.sun_elevation)),
        ("OBJECT", "SPATIALRESOLUTION", (15, 30, 90)),
        ("OBJECT", "SCENECLOUDCOVERAGE", 0),
        ("GROUP", "POINTINGANGLES", pointing),
        ("GROUP", "GAININFORMATION", gains),
    ]
    items = [("GROUP", "ASTERGENERICMETADATA", generic)]
    if with_corners:
        items.append(("GROUP", "MAPPROJECTIONINFORMATION",
                      _corner_items(scene, vnir_shape)))
    else:
        items.append(("GROUP", "PROCESSINGPARAMETERS", [
            ("OBJECT", "MPMETHOD", "UTM", "1"),
            ("OBJECT", "UTMZONECODE",
             -scene.zone if scene.south else scene.zone, "1"),
        ]))
    return items


def _corner_items(scene: Scene, vnir_shape) -> list:
    """UTM grid objects of L1T: corner pixel centres as (northing, easting).

    Southern scenes store the northing without the false northing
    (negative), as the LP DAAC tools expect.
    """
    east, north = scene.upper_left
    lower_east = east + 15.0 * (vnir_shape[1] - 1)
    lower_north = north - 15.0 * (vnir_shape[0] - 1)
    shift = 10_000_000.0 if scene.south else 0.0
    return [
        ("OBJECT", "MAPPROJECTIONNAME", "Universal Transverse Mercator"),
        ("OBJECT", "UTMZONENUMBER", scene.zone),
        ("OBJECT", "UPPERLEFTM", (north - shift, east)),
        ("OBJECT", "LOWERRIGHTM", (lower_north - shift, lower_east)),
    ]


# --------------------------------------------------------------------------
# HDF-EOS2 swath files


def _geolocation(scene: Scene, subsystem: str, shape):
    """11 x 11 geocentric latitudes and longitudes, and the row increment."""
    inc_rows = (shape[0] - 1) / (GEO_POINTS - 1)
    inc_cols = (shape[1] - 1) / (GEO_POINTS - 1)
    k = np.arange(GEO_POINTS)
    rows, cols = np.meshgrid(k * inc_rows, k * inc_cols, indexing="ij")
    xs, ys = scene.transform(subsystem) * (cols + 0.5, rows + 0.5)
    lons, lats = warp_points(scene.crs, "EPSG:4326", xs.ravel().tolist(),
                             ys.ravel().tolist())
    lats = np.radians(np.asarray(lats))
    geocentric = np.degrees(np.arctan((1 - aster.WGS84_E2) * np.tan(lats)))
    return (geocentric.reshape(rows.shape),
            np.asarray(lons).reshape(rows.shape), (inc_rows, inc_cols))


_DFNT = {"uint8": "DFNT_UINT8", "uint16": "DFNT_UINT16",
         "int16": "DFNT_INT16", "float64": "DFNT_FLOAT64"}


def struct_metadata(swaths: dict) -> str:
    """StructMetadata.0 text of swaths ``{name: {"data": {...}, ...}}``."""
    out = ["GROUP=SwathStructure"]
    for n, (name, swath) in enumerate(swaths.items(), start=1):
        shape = next(iter(swath["data"].values())).shape
        geo_shape = swath["geo"]["Latitude"].shape
        out += [f"\tGROUP=SWATH_{n}", f'\t\tSwathName="{name}"',
                "\t\tGROUP=Dimension"]
        dims = (("ImageLine", shape[0]), ("ImagePixel", shape[1]),
                ("GeoTrack", geo_shape[0]), ("GeoXtrack", geo_shape[1]))
        for i, (dim, size) in enumerate(dims, start=1):
            out += [f"\t\t\tOBJECT=Dimension_{i}",
                    f'\t\t\t\tDimensionName="{dim}"', f"\t\t\t\tSize={size}",
                    f"\t\t\tEND_OBJECT=Dimension_{i}"]
        out += ["\t\tEND_GROUP=Dimension", "\t\tGROUP=DimensionMap"]
        maps = (("GeoTrack", "ImageLine", swath["increment"][0]),
                ("GeoXtrack", "ImagePixel", swath["increment"][1]))
        for i, (geo, data, inc) in enumerate(maps, start=1):
            out += [f"\t\t\tOBJECT=DimensionMap_{i}",
                    f'\t\t\t\tGeoDimension="{geo}"',
                    f'\t\t\t\tDataDimension="{data}"', "\t\t\t\tOffset=0",
                    f"\t\t\t\tIncrement={inc:g}",
                    f"\t\t\tEND_OBJECT=DimensionMap_{i}"]
        out += ["\t\tEND_GROUP=DimensionMap", "\t\tGROUP=IndexDimensionMap",
                "\t\tEND_GROUP=IndexDimensionMap", "\t\tGROUP=GeoField"]
        for i, geo in enumerate(("Latitude", "Longitude"), start=1):
            out += [f"\t\t\tOBJECT=GeoField_{i}",
                    f'\t\t\t\tGeoFieldName="{geo}"',
                    "\t\t\t\tDataType=DFNT_FLOAT64",
                    '\t\t\t\tDimList=("GeoTrack","GeoXtrack")',
                    f"\t\t\tEND_OBJECT=GeoField_{i}"]
        out += ["\t\tEND_GROUP=GeoField", "\t\tGROUP=DataField"]
        for i, (fname, values) in enumerate(swath["data"].items(), start=1):
            out += [f"\t\t\tOBJECT=DataField_{i}",
                    f'\t\t\t\tDataFieldName="{fname}"',
                    f"\t\t\t\tDataType={_DFNT[values.dtype.name]}",
                    '\t\t\t\tDimList=("ImageLine","ImagePixel")',
                    f"\t\t\tEND_OBJECT=DataField_{i}"]
        out += ["\t\tEND_GROUP=DataField", "\t\tGROUP=MergedFields",
                "\t\tEND_GROUP=MergedFields", f"\tEND_GROUP=SWATH_{n}"]
    out += ["END_GROUP=SwathStructure", "GROUP=GridStructure",
            "END_GROUP=GridStructure", "GROUP=PointStructure",
            "END_GROUP=PointStructure", "END", ""]
    return "\n".join(out)


def write_swath_file(path: str, swaths: dict, attrs: dict) -> None:
    """Write an HDF-EOS2 file of swaths with pyhdf.

    `swaths` maps a swath name to ``{"data": {field: 2-D array}, "geo":
    {"Latitude": a, "Longitude": a}, "increment": (rows, cols)}``; `attrs`
    maps global attribute names to ODL texts.
    """
    import pyhdf.V  # noqa: F401  (HDF.vgstart needs the module loaded)
    from pyhdf.HDF import HDF, HC
    from pyhdf.SD import SD, SDC

    sdc = {"uint8": SDC.UINT8, "uint16": SDC.UINT16, "int16": SDC.INT16,
           "float64": SDC.FLOAT64}
    sd = SD(path, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    refs = {}
    for swath, content in swaths.items():
        for group, fields, dims in (
                ("Geolocation Fields", content["geo"],
                 ("GeoTrack", "GeoXtrack")),
                ("Data Fields", content["data"],
                 ("ImageLine", "ImagePixel"))):
            for name, values in fields.items():
                sds = sd.create(name, sdc[values.dtype.name], values.shape)
                for axis, dim in enumerate(dims):
                    sds.dim(axis).setname(f"{dim}:{swath}")
                sds[:] = values
                refs.setdefault(swath, {}).setdefault(group, []).append(
                    sds.ref())
                sds.endaccess()
    texts = {"HDFEOSVersion": "HDFEOS_V2.17",
             "StructMetadata.0": struct_metadata(swaths), **attrs}
    for name, text in texts.items():
        sd.attr(name).set(SDC.CHAR8, text)
    sd.end()
    _write_swath_vgroups(path, refs, HDF, HC)


def _write_swath_vgroups(path, refs, HDF, HC):
    hdf = HDF(path, HC.WRITE)
    vgs = hdf.vgstart()
    try:
        for swath, groups in refs.items():
            top = vgs.create(swath)
            top._class = "SWATH"
            for group in ("Geolocation Fields", "Data Fields",
                          "Swath Attributes"):
                child = vgs.create(group)
                child._class = "SWATH Vgroup"
                for ref in groups.get(group, []):
                    child.add(HC.DFTAG_NDG, ref)
                top.insert(child)
                child.detach()
            top.detach()
    finally:
        vgs.end()
        hdf.close()


def write_l1t(path: str, scene: Scene, *, subsystems=("VNIR", "SWIR", "TIR"),
              drop_bands=(), omit=(), dn_patch=None) -> Scene:
    """Write `scene` as an AST_L1T HDF-EOS2 file at `path`.

    Parameters
    ----------
    subsystems : tuple of str, default=("VNIR", "SWIR", "TIR")
        Swaths to write (a scene acquired without SWIR has no SWIR_Swath).
    drop_bands : tuple of str, default=()
        Bands left out of their swath.
    omit : tuple of str, default=()
        Metadata objects left out (e.g. "SOLARDIRECTION").
    dn_patch : dict, optional
        ``{band: [(row, col, dn), ...]}`` written over the digital numbers.
    """
    swaths = {}
    vnir_shape = scene.reflectance["1"].shape
    for subsystem in subsystems:
        bands = {"VNIR": VNIR, "SWIR": SWIR, "TIR": TIR}[subsystem]
        data = {}
        for band in bands:
            if band in drop_bands:
                continue
            dn = to_dn(scene, band)
            for row, col, value in (dn_patch or {}).get(band, []):
                dn[row, col] = value
            scene.dn[band] = dn
            data[f"ImageData{band}"] = dn
        shape = scene.reflectance[bands[0]].shape
        lat, lon, inc = _geolocation(scene, subsystem, shape)
        swaths[aster.L1T_SWATH[subsystem]] = {
            "data": data, "geo": {"Latitude": lat, "Longitude": lon},
            "increment": inc}
    granule = f"AST_L1T_{scene.granule}_20150520034236_{_serial(scene)}"
    attrs = {
        "coremetadata.0": odl_text(_drop(core_metadata(
            scene, "AST_L1T", granule + ".hdf", vnir_shape), omit)),
        "productmetadata.0": odl_text(_drop(product_metadata(
            scene, "1T", vnir_shape), omit)),
    }
    write_swath_file(path, swaths, attrs)
    return scene


def _serial(scene: Scene) -> int:
    return 10000 + int(scene.acquired.timestamp()) % 90000


def write_07xt(folder: str, scene: Scene, *, single_file: bool = False,
               omit=()) -> list:
    """Write `scene` as AST_07XT: a VNIR and a SWIR file (or one file).

    Reflectance is stored as int16 scaled by 1000. The metadata carry no
    UTM corners, so readers place the swaths by their geolocation fields.
    Returns the paths written.
    """
    os.makedirs(folder, exist_ok=True)
    vnir_shape = scene.reflectance["1"].shape
    swaths = {}
    for subsystem, bands in (("VNIR", VNIR), ("SWIR", SWIR)):
        data = {}
        for band in bands:
            dn = np.rint(scene.reflectance[band] / aster.SRF_SCALE)
            scene.dn[band] = dn.astype(np.int16)
            data[f"Band{band}"] = scene.dn[band]
        shape = scene.reflectance[bands[0]].shape
        lat, lon, inc = _geolocation(scene, subsystem, shape)
        swaths[aster.SRF_SWATH[subsystem]] = {
            "data": data, "geo": {"Latitude": lat, "Longitude": lon},
            "increment": inc}
    groups = [swaths] if single_file else [{k: v} for k, v in swaths.items()]
    paths = []
    for second, group in enumerate(groups):
        name = (f"AST_07XT_{scene.granule}_2016011101022{6 + second}_"
                f"{_serial(scene) + second}.hdf")
        attrs = {
            "coremetadata.0": odl_text(_drop(core_metadata(
                scene, "AST_07XT", name, vnir_shape), omit)),
            "productmetadata.0": odl_text(_drop(product_metadata(
                scene, "2", vnir_shape, with_corners=False), omit)),
        }
        paths.append(os.path.join(folder, name))
        write_swath_file(paths[-1], group, attrs)
    return paths


def write_exports(folder: str, scene: Scene, product: str = "L1T", *,
                  met: bool = True, bands=None) -> list:
    """Write per-band GeoTIFFs as download tools deliver them.

    L1T: ``AST_L1T_<granule>_ImageData<band>.tif`` (uint8 DN; LP DAAC
    hdf2tif naming) and, with `met`, an ODL ``.met`` file with the gains,
    the sun and the date. 07XT: ``AST_07XT_<granule>_SurfaceReflectance
    <VNIR|SWIR>_Band<band>.tif`` (int16, x 1000).
    """
    import rasterio

    os.makedirs(folder, exist_ok=True)
    bands = list(bands or (*VNIR, *SWIR))
    prefix = (f"AST_L1T_{scene.granule}_20150520034236_{_serial(scene)}"
              if product == "L1T" else
              f"AST_07XT_{scene.granule}_20160111010226_{_serial(scene)}")
    paths = []
    for band in bands:
        subsystem = aster.SUBSYSTEM[band]
        if product == "L1T":
            values = to_dn(scene, band)
            name = f"{prefix}_ImageData{band}.tif"
        else:
            values = np.rint(scene.reflectance[band] / aster.SRF_SCALE
                             ).astype(np.int16)
            name = f"{prefix}_SurfaceReflectance{subsystem}_Band{band}.tif"
        scene.dn[band] = values
        paths.append(os.path.join(folder, name))
        with rasterio.open(paths[-1], "w", driver="GTiff",
                           width=values.shape[1], height=values.shape[0],
                           count=1, dtype=values.dtype.name, crs=scene.crs,
                           transform=scene.transform(subsystem),
                           nodata=0) as dst:
            dst.write(values, 1)
    if product == "L1T" and met:
        vnir_shape = scene.reflectance["1"].shape
        text = odl_text(core_metadata(scene, "AST_L1T", prefix + ".hdf",
                                      vnir_shape)
                        + product_metadata(scene, "1T", vnir_shape))
        with open(os.path.join(folder, prefix + ".hdf.met"), "w") as handle:
            handle.write(text)
    return paths


def make_l1t(path: str, seed: int = 0, vnir_px: int = 600,
             **options) -> Scene:
    """Synthesise a scene and write it as an AST_L1T HDF file at `path`.

    `options` go to `synth_scene` (place, acquired, n_units, flat, sun,
    gains) and `write_l1t` (subsystems, drop_bands, omit, dn_patch).
    The default makes the demo scene: 600 x 600 VNIR pixels (9 km), six
    rock units near Cuprite, Nevada (UTM 11N), acquired 2005-06-18.
    """
    write_keys = ("subsystems", "drop_bands", "omit", "dn_patch")
    write_opts = {k: options.pop(k) for k in write_keys if k in options}
    scene = synth_scene(seed, vnir_px, **options)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return write_l1t(path, scene, **write_opts)


def write_units(path: str, scene: Scene) -> None:
    """GeoTIFF of the rock unit codes on the SWIR (30 m) grid, nodata 0."""
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", width=scene.units.shape[1],
                       height=scene.units.shape[0], count=1, dtype="uint8",
                       crs=scene.crs, transform=scene.transform("SWIR"),
                       nodata=0) as dst:
        dst.write(scene.units, 1)
