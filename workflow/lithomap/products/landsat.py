"""Landsat 8 and 9 (OLI, OLI-2) Collection 2 products, Level-1 and Level-2.

A product is read where it lies: a folder of the USGS files, the ``.tar``
or ``.tar.gz`` archive USGS delivers (read in place through GDAL's /vsitar/,
never unpacked), or the product's ``*_MTL.txt`` / ``.json`` / ``.xml``
file. A ``.tar`` is read at once; a ``.tar.gz`` is inflated once when it is
opened and once more by GDAL in each process on its first read (measured:
1.5 s for 100 MB), after which GDAL seeks in it quickly.

Reflectance
    Level-2 (L2SP, L2SR): surface reflectance, ``dn * REFLECTANCE_MULT_BAND_n
    + REFLECTANCE_ADD_BAND_n`` from the MTL group
    LEVEL2_SURFACE_REFLECTANCE_PARAMETERS. Level-1 (L1TP, L1GT): top of
    atmosphere reflectance, the same with the Level-1 rescaling factors,
    divided by the sine of the scene-centre SUN_ELEVATION. Every number
    comes from the MTL; none is built in. Digital numbers of 0 (fill) and
    outside QUANTIZE_CAL_MIN/MAX_BAND_n, when the MTL gives them, are
    invalid.

Masks
    QA_PIXEL, when the product has it: fill, cloud, cloud shadow, cirrus and
    (by default) dilated cloud make a pixel unusable; snow and water only
    when asked. QA_RADSAT: saturation of any band read, and terrain
    occlusion. A product without QA_PIXEL (the cropped samples) is read with
    a warning: only fill and the valid range are masked then.

Band names
    Bands are named as the product names them: ``SR_B1`` .. ``SR_B7``
    (Level-2), ``B1`` .. ``B9`` (Level-1). Either spelling is accepted for
    either level, so a region can mix Level-1 and Level-2 scenes: the band
    keeps the name it was asked by (so the stacks of all scenes line up) and
    reads the product's own file; top of atmosphere standing in for surface
    reflectance is logged as a warning. Thermal bands are not read. With no
    band list, each level reads its own default names, so a region that
    mixes levels should list its bands.

Georeferencing
    Each file's own georeferencing is used when it has a CRS. A file with
    none (the cropped samples in ``../shared/data/landsat/``) is placed from
    the MTL: WGS 84 / UTM zone UTM_ZONE (north zones, with negative
    northings south of the equator, as USGS writes them; a negative zone
    number means a south zone), corner coordinates that are pixel centres,
    and GRID_CELL_SIZE_REFLECTIVE (PANCHROMATIC for B8). The size those
    corners give must equal the file's, or the product is refused. When the
    file's georeferencing and the MTL's disagree, a warning says so and the
    file's wins, since it describes the pixels the file actually holds (the
    MTL of a resampled or re-cut product still describes the original).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import re
import tarfile
import warnings
import zlib
from dataclasses import dataclass

import rasterio
from affine import Affine
from rasterio import warp
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from lithomap.products.base import (BandSource, Georef, MaskSource, Product,
                                    ProductError, RasterSource)
from lithomap.products.mtl import MTL, MTL_SUFFIXES, parse_mtl

log = logging.getLogger(__name__)

DEFAULT_BANDS_L2 = [f"SR_B{n}" for n in range(1, 8)]
"""Bands read from a Level-2 product when none are asked for."""

DEFAULT_BANDS_L1 = [f"B{n}" for n in range(1, 8)]
"""Bands read from a Level-1 product when none are asked for."""

DEFAULT_BANDS = DEFAULT_BANDS_L2
"""The reader's default band list (Level-2 names; Level-1 maps them)."""

QA_PIXEL_BITS = {"fill": 0, "dilated_cloud": 1, "cirrus": 2, "cloud": 3,
                 "cloud_shadow": 4, "snow": 5, "clear": 6, "water": 7}
"""Single-bit flags of the Collection 2 QA_PIXEL band (bit numbers)."""

RADSAT_TERRAIN_OCCLUSION_BIT = 11
"""QA_RADSAT bit of terrain occlusion; bit n-1 is saturation of band n."""

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
"""File endings read as a USGS product archive."""

_LEVELS = {"L2SP": "L2", "L2SR": "L2", "L1TP": "L1", "L1GT": "L1"}
_SPACECRAFT = ("LANDSAT_8", "LANDSAT_9")
_REFLECTIVE = {"L2": range(1, 8), "L1": range(1, 10)}
_THERMAL = (10, 11)
_PANCHROMATIC = 8
_SCALING_GROUP = {"L2": "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS",
                  "L1": "LEVEL1_RADIOMETRIC_RESCALING"}
_RANGE_GROUP = {"L2": "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS",
                "L1": "LEVEL1_MIN_MAX_PIXEL_VALUE"}
_CONTENTS = "PRODUCT_CONTENTS"
_IMAGE = "IMAGE_ATTRIBUTES"
_PROJECTION = "PROJECTION_ATTRIBUTES"
_BAND_NAME = re.compile(r"^(SR_)?B(\d{1,2})$")
# The MTL's lat/lon corners are rounded to 1e-5 degrees, and a cropped
# product keeps the whole scene's: a tolerance this wide only catches a
# wrong zone or hemisphere, never rounding.
_FOOTPRINT_TOLERANCE_DEG = 0.05


GDAL_OPTIONS = {"CPL_VSIL_GZIP_WRITE_PROPERTIES": "NO"}
"""GDAL settings for every read: no ``.properties`` side-car beside a
``.tar.gz`` (GDAL writes one by default, into the user's data folder)."""


@contextlib.contextmanager
def _quiet_gdal():
    """GDAL_OPTIONS set, and no warning that a file lacks georeferencing.

    Files without georeferencing are expected here: the reader places them
    from the MTL, or refuses them with a ProductError.
    """
    # catch_warnings swaps the process-wide filter list; under threads
    # this can at worst hide or show some other warning for an instant.
    with rasterio.Env(**GDAL_OPTIONS), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


@dataclass(frozen=True)
class LandsatRaster(RasterSource):
    """One file of a Landsat product, read with `GDAL_OPTIONS`.

    `georef` is set when the file has no georeferencing of its own and the
    MTL's is used instead.
    """

    def open_georef(self) -> Georef:
        """Georeferencing of this source (the override, else the file's)."""
        with _quiet_gdal():
            return super().open_georef()

    def read(self, window):
        """Raw values of `window` (boundless: outside the file reads 0)."""
        with _quiet_gdal():
            return super().read(window)


@dataclass(frozen=True)
class ProductFiles:
    """The files of one product, in a folder or an archive."""

    path: str
    """The product as given (folder, archive or MTL file)."""
    members: dict
    """Path GDAL opens, by file name."""
    metadata: dict
    """Content (bytes) of each ``*_MTL.*`` file, by file name."""

    def gdal_path(self, name: str, what: str) -> str:
        """GDAL path of file `name`; ProductError when the product lacks it.

        `what` says which band or layer the file holds, for the message.
        """
        if name not in self.members:
            kind = ("archive" if self.path.lower().endswith(
                ARCHIVE_SUFFIXES) else "folder")
            raise ProductError(
                f"{self.path}: {what} file {name} is listed in the MTL but "
                f"missing from the {kind}; the download may be incomplete. "
                "Download the product again, or drop the band from the "
                "region's 'bands' list in config.yaml")
        return self.members[name]


def open_product(path: str, bands: list[str] | None = None, *,
                 mask_dilated_cloud: bool = True, mask_cirrus: bool = True,
                 mask_snow: bool = False, mask_water: bool = False,
                 mask_saturation: bool = True) -> Product:
    """Open a Landsat 8/9 Collection 2 Level-1 or Level-2 product.

    Parameters
    ----------
    path : str
        Product folder, ``.tar`` / ``.tar.gz`` archive as USGS delivers it,
        or the product's ``*_MTL.txt`` (``.json``, ``.xml``) file.
    bands : list of str, optional
        Bands to read, in order, e.g. ``["SR_B2", "SR_B6"]``. Level-1 and
        Level-2 names are both accepted for either level (see the module
        docstring). Default: ``DEFAULT_BANDS_L2`` for a Level-2 product,
        ``DEFAULT_BANDS_L1`` for a Level-1 one.
    mask_dilated_cloud : bool, default True
        Mask QA_PIXEL's dilated cloud (bit 1), the margin around clouds.
    mask_cirrus : bool, default True
        Mask QA_PIXEL's high-confidence cirrus (bit 2).
    mask_snow : bool, default False
        Mask QA_PIXEL's snow and ice (bit 5). Off by default: bright rock
        and salt are sometimes flagged as snow.
    mask_water : bool, default False
        Mask QA_PIXEL's water (bit 7).
    mask_saturation : bool, default True
        Mask pixels that QA_RADSAT flags as saturated in any band read, or
        as terrain occluded.

    Returns
    -------
    Product
        Bands keyed by the names asked for, QA masks, acquisition time and
        metadata (processing level, sun angles, cloud cover).

    Raises
    ------
    ProductError
        If the path is not a Landsat 8/9 Collection 2 product, the archive
        is damaged, the MTL lacks a value, a band file is missing, or a file
        cannot be placed on the ground.
    """
    flags = {"mask_dilated_cloud": mask_dilated_cloud,
             "mask_cirrus": mask_cirrus, "mask_snow": mask_snow,
             "mask_water": mask_water, "mask_saturation": mask_saturation}
    _check_flags(flags)
    files = list_product_files(path)
    mtl = _pick_mtl(files)
    level = _check_product(files.path, mtl)

    wanted = _resolve_bands(files.path, mtl, level, bands)
    sine = _sun_sine(mtl) if level == "L1" else 1.0
    placer = _Placer(files, mtl)
    sources = {name: _band_source(name, number, files, mtl, level, sine,
                                  placer)
               for name, number in wanted.items()}
    band_grid = _reflective_grid(sources, wanted, placer)
    masks = _masks(files, mtl, placer, band_grid, set(wanted.values()),
                   flags)
    placer.report()

    product = Product(
        sensor="landsat", path=path,
        scene_id=mtl.text(_CONTENTS, "LANDSAT_PRODUCT_ID"),
        bands=sources, masks=tuple(masks), acquired=_acquired(mtl),
        metadata=_summary(mtl, level, placer))
    log.info("%s: %s %s, %d band(s), %d mask(s), %d x %d px",
             product.scene_id, product.metadata["processing_level"],
             product.metadata["reflectance"], len(sources), len(masks),
             band_grid.width, band_grid.height)
    return product


def _reflective_grid(sources: dict, wanted: dict, placer: _Placer
                     ) -> Georef:
    """Grid of the first 30 m band read (the grid the QA layers share)."""
    name = next((name for name, number in wanted.items()
                 if number != _PANCHROMATIC), next(iter(wanted)))
    return placer.grid_of(sources[name].raster)


def _check_flags(flags: dict):
    """ProductError unless every masking option is a bool."""
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise ProductError(f"landsat option {key}: expected true or "
                               f"false. Received: {value!r}")


# -- finding the files ------------------------------------------------------

def list_product_files(path: str) -> ProductFiles:
    """Files of the product at `path` (folder, archive or MTL file).

    Archives are listed with `tarfile`, which also reads their MTL files;
    a ``.tar.gz`` is inflated once for that. A damaged or truncated archive
    raises a ProductError here, before any pixel is read.
    """
    full = os.path.abspath(path)
    if os.path.isdir(full):
        return _folder_files(path, full, os.listdir(full))
    if full.lower().endswith(ARCHIVE_SUFFIXES):
        return _archive_files(path, full)
    if full.endswith(MTL_SUFFIXES) and os.path.isfile(full):
        folder = os.path.dirname(full)
        files = _folder_files(path, folder, os.listdir(folder))
        name = os.path.basename(full)
        return ProductFiles(files.path, files.members,
                            {name: files.metadata[name]})
    raise ProductError(
        f"{path}: not a recognised Landsat product; expected a product "
        "folder, the .tar or .tar.gz archive USGS delivers, or a *_MTL.txt "
        "file. For a stacked GeoTIFF use sensor 'geotiff'")


def _folder_files(path: str, folder: str, names: list[str]) -> ProductFiles:
    """ProductFiles of a folder holding the product's files."""
    members = {name: os.path.join(folder, name) for name in names
               if os.path.isfile(os.path.join(folder, name))}
    metadata = {}
    for name in members:
        if name.endswith(MTL_SUFFIXES):
            with open(members[name], "rb") as fh:
                metadata[name] = fh.read()
    return ProductFiles(path, members, metadata)


def _archive_files(path: str, full: str) -> ProductFiles:
    """ProductFiles of a tar archive, read in place."""
    members, metadata = {}, {}
    try:
        with tarfile.open(full, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = os.path.basename(member.name)
                members[name] = f"/vsitar/{full}/{member.name}"
                if name.endswith(MTL_SUFFIXES):
                    metadata[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ProductError(
            f"{path}: the archive cannot be read ({exc}); it is damaged or "
            "was cut short. Download it again from USGS") from exc
    return ProductFiles(path, members, metadata)


def _pick_mtl(files: ProductFiles) -> MTL:
    """The product's MTL, preferring .txt over .json over .xml."""
    stems = {name[:name.rindex("_MTL")] for name in files.metadata}
    if not stems:
        raise ProductError(
            f"{files.path}: not a recognised Landsat product: no *_MTL.txt, "
            "*_MTL.json or *_MTL.xml file in it. For a stacked GeoTIFF use "
            "sensor 'geotiff'")
    if len(stems) > 1:
        raise ProductError(
            f"{files.path}: holds the metadata of {len(stems)} products "
            f"({', '.join(sorted(stems))}); give each product its own "
            "folder and its own scene in config.yaml")
    stem = stems.pop()
    for suffix in MTL_SUFFIXES:
        if stem + suffix in files.metadata:
            name = stem + suffix
            log.debug("%s: metadata from %s", files.path, name)
            return parse_mtl(name, files.metadata[name])
    raise AssertionError("unreachable: a stem always has a metadata file")


def _check_product(path: str, mtl: MTL) -> str:
    """Processing level ("L1" or "L2") of a Landsat 8/9 C2 product."""
    collection = mtl.text(_CONTENTS, "COLLECTION_NUMBER")
    if collection.lstrip("0") != "2":
        raise ProductError(
            f"{mtl.name}: COLLECTION_NUMBER is {collection}, expected 02; "
            "lithomap reads Landsat Collection 2 products only")
    spacecraft = mtl.text(_IMAGE, "SPACECRAFT_ID")
    if spacecraft not in _SPACECRAFT:
        raise ProductError(
            f"{mtl.name}: SPACECRAFT_ID is {spacecraft}, expected one of "
            f"{', '.join(_SPACECRAFT)}. Read Landsat 4-7 band stacks with "
            "sensor 'geotiff'")
    processing = mtl.text(_CONTENTS, "PROCESSING_LEVEL")
    if processing not in _LEVELS:
        raise ProductError(
            f"{mtl.name}: PROCESSING_LEVEL is {processing}, expected one of "
            f"{', '.join(_LEVELS)}")
    return _LEVELS[processing]


# -- bands ------------------------------------------------------------------

def _native_name(number: int, level: str) -> str:
    """The product's own name of band `number`."""
    return f"SR_B{number}" if level == "L2" else f"B{number}"


def _resolve_bands(path: str, mtl: MTL, level: str,
                   bands: list[str] | None) -> dict[str, int]:
    """Band number of each band asked for, by the name asked."""
    if bands is None:
        bands = DEFAULT_BANDS_L2 if level == "L2" else DEFAULT_BANDS_L1
        log.debug("%s: no bands asked for; reading %s", path,
                  ", ".join(bands))
    if isinstance(bands, str) or not bands:
        raise ProductError(f"{path}: bands must be a non-empty list of band "
                           f"names. Received: {bands!r}")
    if len(set(bands)) != len(bands):
        raise ProductError(f"{path}: bands {bands} name a band twice; fix "
                           "the region's 'bands' list in config.yaml")
    listed = {_native_name(n, level): n for n in _REFLECTIVE[level]
              if mtl.has(_CONTENTS, f"FILE_NAME_BAND_{n}")}
    numbers = {name: _band_number(path, name) for name in bands}
    native = [_native_name(n, level) for n in numbers.values()]
    missing = [name for name, own in zip(numbers, native)
               if own not in listed]
    if missing:
        raise ProductError(
            f"{path}: no band {', '.join(missing)} in this Level-"
            f"{level[1]} product; it has {', '.join(listed)}. Fix the "
            "region's 'bands' list in config.yaml")

    toa = [name for name in numbers if name.startswith("SR_")
           and level == "L1"]
    if toa:
        log.warning("%s: Level-1 product; bands %s are read as top of "
                    "atmosphere reflectance, not surface reflectance",
                    path, ", ".join(toa))
    for name, own in zip(numbers, native):
        if name != own:
            log.debug("%s: band %s reads the product's %s", path, name, own)
    return numbers


def _band_number(path: str, name: str) -> int:
    """Band number in a name such as "SR_B6" or "B6"."""
    match = _BAND_NAME.match(name) if isinstance(name, str) else None
    if match is None:
        raise ProductError(
            f"{path}: band {name!r} is not a Landsat band name; write "
            "SR_B1 .. SR_B7 (Level-2) or B1 .. B9 (Level-1) in the region's "
            "'bands' list in config.yaml")
    number = int(match.group(2))
    if number in _THERMAL:
        raise ProductError(
            f"{path}: band {name} is thermal; lithomap reads reflective "
            "bands only (SR_B1 .. SR_B7, B1 .. B9)")
    return number


def _band_source(name: str, number: int, files: ProductFiles, mtl: MTL,
                 level: str, sine: float, placer: _Placer) -> BandSource:
    """BandSource of band `number`, known as `name`."""
    file_name = mtl.text(_CONTENTS, f"FILE_NAME_BAND_{number}")
    gdal_path = files.gdal_path(file_name, f"band {name}")
    cell_key = ("GRID_CELL_SIZE_PANCHROMATIC" if number == _PANCHROMATIC
                else "GRID_CELL_SIZE_REFLECTIVE")
    raster = placer.raster(gdal_path, cell_key, f"band {name}")

    group = _SCALING_GROUP[level]
    mult = mtl.number(group, f"REFLECTANCE_MULT_BAND_{number}")
    add = mtl.number(group, f"REFLECTANCE_ADD_BAND_{number}")
    valid = _valid_range(mtl, level, number)
    log.debug("%s: %s = dn * %g + %g (sun sine %.6f), valid %s", mtl.name,
              name, mult, add, sine, valid)
    return BandSource(name, raster, scale=mult / sine, offset=add / sine,
                      nodata=(0,), valid_range=valid)


def _valid_range(mtl: MTL, level: str, number: int):
    """(min, max) valid digital numbers from the MTL, or None."""
    group = _RANGE_GROUP[level]
    low = mtl.optional_number(group, f"QUANTIZE_CAL_MIN_BAND_{number}")
    high = mtl.optional_number(group, f"QUANTIZE_CAL_MAX_BAND_{number}")
    if low is None or high is None:
        log.debug("%s: no QUANTIZE_CAL_MIN/MAX_BAND_%d; only 0 is invalid",
                  mtl.name, number)
        return None
    return (low, high)


def _sun_sine(mtl: MTL) -> float:
    """Sine of the scene-centre sun elevation, for Level-1 reflectance."""
    # TODO: per-pixel sun angles (the SZA band, or the ANG file) would
    # remove the error of using the scene centre everywhere: the sun's
    # elevation changes by a degree or two across a scene, a few per cent
    # of reflectance at the edges when the sun is low.
    elevation = mtl.number(_IMAGE, "SUN_ELEVATION")
    if not 0 < elevation <= 90:
        raise ProductError(
            f"{mtl.name}: SUN_ELEVATION is {elevation}; top of atmosphere "
            "reflectance needs the sun above the horizon (a night scene?)")
    return math.sin(math.radians(elevation))


# -- georeferencing ---------------------------------------------------------

def mtl_crs(mtl: MTL) -> CRS:
    """CRS of the product's map projection (WGS 84 / UTM)."""
    projection = mtl.text(_PROJECTION, "MAP_PROJECTION")
    datum = mtl.text(_PROJECTION, "DATUM")
    if projection != "UTM" or datum != "WGS84":
        # TODO: polar stereographic (Antarctic scenes) is not rebuilt.
        raise ProductError(
            f"{mtl.name}: MAP_PROJECTION {projection} / DATUM {datum}; "
            "georeferencing can be rebuilt for UTM on WGS84 only. Use "
            "files that carry their own CRS")
    zone = int(mtl.number(_PROJECTION, "UTM_ZONE"))
    if not 1 <= abs(zone) <= 60:
        raise ProductError(f"{mtl.name}: UTM_ZONE is {zone}, expected 1 to "
                           "60 (negative for a south zone)")
    # USGS writes Collection 2 in north zones, with negative northings in
    # the southern hemisphere; a negative zone number marks a south zone.
    return CRS.from_epsg((32600 if zone > 0 else 32700) + abs(zone))


def mtl_georef(mtl: MTL, cell_key: str = "GRID_CELL_SIZE_REFLECTIVE"
               ) -> Georef:
    """Grid the MTL describes for pixels of size `cell_key`.

    The MTL's projected corners (CORNER_UL/LR_PROJECTION_X/Y_PRODUCT) are
    the centres of the corner pixels, so the grid's edge lies half a cell
    outside them, and it is one pixel wider than the corners are apart.
    """
    cell = mtl.number(_PROJECTION, cell_key)
    ulx = mtl.number(_PROJECTION, "CORNER_UL_PROJECTION_X_PRODUCT")
    uly = mtl.number(_PROJECTION, "CORNER_UL_PROJECTION_Y_PRODUCT")
    lrx = mtl.number(_PROJECTION, "CORNER_LR_PROJECTION_X_PRODUCT")
    lry = mtl.number(_PROJECTION, "CORNER_LR_PROJECTION_Y_PRODUCT")
    cols, rows = (lrx - ulx) / cell, (uly - lry) / cell
    if cell <= 0 or cols < 0 or rows < 0 or not (
            _whole(cols) and _whole(rows)):
        raise ProductError(
            f"{mtl.name}: corners UL ({ulx}, {uly}) and LR ({lrx}, {lry}) "
            f"are not whole {cell} m cells ({cell_key}) apart, west to "
            "east and north to south; the MTL is inconsistent")
    transform = Affine(cell, 0, ulx - cell / 2, 0, -cell, uly + cell / 2)
    return Georef(mtl_crs(mtl), transform, round(cols) + 1, round(rows) + 1)


def _whole(value: float) -> bool:
    """Whether `value` is a whole number, to rounding of the MTL."""
    return abs(value - round(value)) < 1e-6


def _same_grid(a: Georef, b: Georef) -> bool:
    """Whether two georeferencings place the same pixels (to 1 mm)."""
    return (a.crs == b.crs and (a.width, a.height) == (b.width, b.height)
            and a.transform.almost_equals(b.transform, precision=1e-3))


def _describe(ref: Georef) -> str:
    """Short text of a georeferencing, for messages."""
    left, _, _, top = ref.bounds
    return (f"{ref.crs.to_string() if ref.crs else 'no CRS'}, "
            f"{ref.width} x {ref.height} px of {ref.res:g} m from "
            f"({left:.1f}, {top:.1f})")


class _Placer:
    """Georeferencing of each file of one product, and what was decided.

    A file with a CRS keeps it (a warning is collected when the MTL says
    otherwise); a file without one gets the grid the MTL describes, which
    must have the file's size.
    """

    def __init__(self, files: ProductFiles, mtl: MTL):
        self.files = files
        self.mtl = mtl
        self.from_mtl: list[str] = []
        self.disagree: list[tuple[str, Georef, Georef]] = []
        self._grids: dict[str, Georef] = {}
        self._footprint_checked = False

    def raster(self, gdal_path: str, cell_key: str, what: str
               ) -> RasterSource:
        """RasterSource of `gdal_path`, placed by the file or the MTL."""
        own = _open_georef(self.files.path, gdal_path, what)
        name = os.path.basename(gdal_path)
        if own.crs is not None:
            self._compare(name, own, cell_key)
            self._grids[gdal_path] = own
            return LandsatRaster(gdal_path)
        expected = mtl_georef(self.mtl, cell_key)
        if (own.width, own.height) != (expected.width, expected.height):
            raise ProductError(
                f"{self.files.path}: {name} ({what}) has no georeferencing "
                f"and is {own.width} x {own.height} px, but the MTL's "
                f"corners and {cell_key} describe {expected.width} x "
                f"{expected.height} px; it cannot be placed on the ground. "
                "Use a product whose files carry their own CRS, or drop "
                "the band from the region's 'bands' list")
        if own.transform != Affine.identity() and not _same_grid(
                Georef(expected.crs, own.transform, own.width, own.height),
                expected):
            log.warning("%s: %s has a transform (%s) but no CRS; the MTL's "
                        "georeferencing (%s) is used instead",
                        self.files.path, name, own.transform,
                        _describe(expected))
        self._check_footprint(expected)
        self.from_mtl.append(name)
        self._grids[gdal_path] = expected
        return LandsatRaster(gdal_path, georef=expected)

    def grid_of(self, raster: RasterSource) -> Georef:
        """The georeferencing decided for `raster`."""
        return self._grids[raster.path]

    def _compare(self, name: str, own: Georef, cell_key: str):
        """Collect a disagreement between a file and the MTL."""
        try:
            expected = mtl_georef(self.mtl, cell_key)
        except ProductError as exc:
            log.debug("%s: MTL georeferencing not checked (%s)", name, exc)
            return
        if not _same_grid(own, expected):
            self.disagree.append((name, own, expected))

    def _check_footprint(self, grid: Georef):
        """Warn when the projected corners fall outside the lat/lon ones."""
        keys = [f"CORNER_{c}_{a}_PRODUCT" for c in ("UL", "UR", "LL", "LR")
                for a in ("LAT", "LON")]
        if self._footprint_checked or not all(
                self.mtl.has(_PROJECTION, k) for k in keys):
            return
        self._footprint_checked = True
        lats = [self.mtl.number(_PROJECTION, k) for k in keys[0::2]]
        lons = [self.mtl.number(_PROJECTION, k) for k in keys[1::2]]
        left, bottom, right, top = grid.bounds
        lon, lat = warp.transform(
            grid.crs, "EPSG:4326", [(left + right) / 2], [(bottom + top) / 2])
        tol = _FOOTPRINT_TOLERANCE_DEG
        inside = (min(lats) - tol <= lat[0] <= max(lats) + tol
                  and min(lons) - tol <= lon[0] <= max(lons) + tol)
        if not inside:
            log.warning(
                "%s: the grid rebuilt from the MTL (%s) is centred at "
                "lat %.4f, lon %.4f, outside the scene's lat/lon corners "
                "(lat %.4f to %.4f, lon %.4f to %.4f); UTM_ZONE or the "
                "corner coordinates may be wrong", self.mtl.name,
                _describe(grid), lat[0], lon[0], min(lats), max(lats),
                min(lons), max(lons))

    def report(self):
        """Log, once per product, which georeferencing was used."""
        if self.from_mtl:
            log.debug("%s: %d file(s) placed from the MTL: %s",
                      self.files.path, len(self.from_mtl),
                      ", ".join(self.from_mtl))
        if self.disagree:
            name, own, expected = self.disagree[0]
            others = len(self.disagree) - 1
            log.warning(
                "%s: %s carries its own georeferencing (%s), which differs "
                "from the MTL's (%s)%s; the file's own is used, since it "
                "describes the pixels the file holds (the MTL may describe "
                "the product before it was resampled or cut)",
                self.files.path, name, _describe(own), _describe(expected),
                f", as do {others} other file(s)" if others else "")


def _open_georef(path: str, gdal_path: str, what: str) -> Georef:
    """The file's own georeferencing (crs None when it has none)."""
    try:
        with _quiet_gdal(), rasterio.open(gdal_path) as src:
            return Georef(src.crs, src.transform, src.width, src.height)
    except RasterioIOError as exc:
        raise ProductError(
            f"{path}: {os.path.basename(gdal_path)} ({what}) cannot be "
            f"opened ({exc}); the file is damaged or not a GeoTIFF") from exc


# -- masks ------------------------------------------------------------------

def _qa_pixel_bits(flags: dict) -> tuple[int, ...]:
    """QA_PIXEL bits that make a pixel unusable under `flags`."""
    names = ["fill", "cloud", "cloud_shadow"]
    names += [name for name in ("dilated_cloud", "cirrus", "snow", "water")
              if flags[f"mask_{name}"]]
    return tuple(sorted(QA_PIXEL_BITS[name] for name in names))


def _masks(files: ProductFiles, mtl: MTL, placer: _Placer, band_grid: Georef,
           numbers: set[int], flags: dict) -> list[MaskSource]:
    """QA_PIXEL and QA_RADSAT masks, where the product has them."""
    layers = [("QA_PIXEL", "FILE_NAME_QUALITY_L1_PIXEL",
               _qa_pixel_bits(flags))]
    if flags["mask_saturation"]:
        bits = tuple(sorted(n - 1 for n in numbers))
        layers.append(("QA_RADSAT",
                       "FILE_NAME_QUALITY_L1_RADIOMETRIC_SATURATION",
                       bits + (RADSAT_TERRAIN_OCCLUSION_BIT,)))
    masks = []
    for layer, key, bits in layers:
        name = (mtl.text(_CONTENTS, key) if mtl.has(_CONTENTS, key)
                else None)
        if name is None or name not in files.members:
            log.warning("%s: no %s file; %s", files.path, layer,
                        "clouds, cloud shadows and fill are not masked "
                        "(only 0 and values outside the valid range are)"
                        if layer == "QA_PIXEL" else
                        "saturated pixels are not masked")
            continue
        raster = placer.raster(files.members[name],
                               "GRID_CELL_SIZE_REFLECTIVE", layer)
        _check_mask_grid(files.path, name, layer, placer.grid_of(raster),
                         band_grid)
        masks.append(MaskSource(layer, raster, "bits", bits))
        log.debug("%s: %s masks bits %s", files.path, layer, bits)
    return masks


def _check_mask_grid(path: str, name: str, layer: str, grid: Georef,
                     band_grid: Georef):
    """ProductError unless a QA layer covers the bands pixel for pixel."""
    if (grid.width, grid.height) != (band_grid.width, band_grid.height):
        raise ProductError(
            f"{path}: {name} ({layer}) is {grid.width} x {grid.height} px "
            f"but the bands are {band_grid.width} x {band_grid.height} px; "
            f"{layer} must match the bands pixel for pixel. The file may "
            "belong to another product or have been resampled")
    if not _same_grid(grid, band_grid):
        raise ProductError(
            f"{path}: {name} ({layer}) lies at {_describe(grid)} but the "
            f"bands at {_describe(band_grid)}; {layer} must match the "
            "bands pixel for pixel")


# -- metadata ---------------------------------------------------------------

def _acquired(mtl: MTL) -> dt.datetime | None:
    """Scene-centre acquisition time (UTC), when the MTL gives it."""
    if not (mtl.has(_IMAGE, "DATE_ACQUIRED")
            and mtl.has(_IMAGE, "SCENE_CENTER_TIME")):
        return None
    date = mtl.text(_IMAGE, "DATE_ACQUIRED")
    clock = mtl.text(_IMAGE, "SCENE_CENTER_TIME").rstrip("Z")
    # USGS writes 7 decimals of a second; datetime takes at most 6.
    whole, _, fraction = clock.partition(".")
    try:
        return dt.datetime.fromisoformat(
            f"{date}T{whole}.{(fraction + '000000')[:6]}"
        ).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        log.debug("%s: acquisition time %s %s not understood", mtl.name,
                  date, clock)
        return None


def _summary(mtl: MTL, level: str, placer: _Placer) -> dict:
    """Metadata worth reporting."""
    out = {
        "processing_level": mtl.text(_CONTENTS, "PROCESSING_LEVEL"),
        "reflectance": ("surface" if level == "L2"
                        else "top_of_atmosphere"),
        "spacecraft": mtl.text(_IMAGE, "SPACECRAFT_ID"),
        "mtl": mtl.name,
        "georef_from_mtl": list(placer.from_mtl),
    }
    for key in ("SUN_ELEVATION", "SUN_AZIMUTH", "CLOUD_COVER"):
        value = mtl.optional_number(_IMAGE, key)
        if value is not None:
            out[key.lower()] = value
    return out


__all__ = ["open_product", "list_product_files", "mtl_georef", "mtl_crs",
           "DEFAULT_BANDS", "DEFAULT_BANDS_L1", "DEFAULT_BANDS_L2",
           "QA_PIXEL_BITS", "GDAL_OPTIONS", "LandsatRaster",
           "ProductFiles"]
