"""What every product reader hands to the rest of lithomap.

A reader turns a product as the provider ships it into a `Product`: a set of
`BandSource` objects (one per band, each knowing where its digital numbers
live and how they become reflectance) and `MaskSource` objects (quality
layers and the rule that flags unusable pixels). Nothing is read here; the
grid module reads windows of these sources lazily, chunk by chunk.

Reflectance is always linear in the digital number, ``dn * scale + offset``,
which covers Sentinel-2 BOA, Landsat Collection 2 (surface reflectance and
sun-corrected top of atmosphere) and ASTER (radiance folded into one factor).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window


class ProductError(ValueError):
    """A product is missing, unrecognised, or lacks what was asked of it."""


@dataclass(frozen=True)
class Georef:
    """Where a raster's pixels lie."""

    crs: CRS
    """Coordinate reference system of the raster."""
    transform: Affine
    """Affine transform of the upper-left pixel corner."""
    width: int
    """Number of columns."""
    height: int
    """Number of rows."""

    @property
    def res(self) -> float:
        """Pixel size along x, in CRS units."""
        return abs(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        t = self.transform
        left, top = t.c, t.f
        right = t.c + t.a * self.width + t.b * self.height
        bottom = t.f + t.d * self.width + t.e * self.height
        return (min(left, right), min(bottom, top), max(left, right),
                max(bottom, top))


@dataclass(frozen=True)
class RasterSource:
    """One band of one file that GDAL (through rasterio) can open.

    Subclasses that cannot go through GDAL (ASTER HDF4 via pyhdf) override
    `open_georef` and `read`.
    """

    path: str
    """Path GDAL opens; may be a /vsitar/ or /vsigzip/ path."""
    band_index: int = 1
    """1-based band number inside the file."""
    georef: Georef | None = None
    """Georeferencing to use instead of the file's own (None: the file's)."""

    def open_georef(self) -> Georef:
        """Georeferencing of this source (the override, else the file's)."""
        if self.georef is not None:
            return self.georef
        try:
            with rasterio.open(self.path) as src:
                if src.crs is None:
                    raise ProductError(
                        f"{self.path}: the file has no CRS and the product "
                        "metadata gave none; cannot place it on a grid")
                return Georef(src.crs, src.transform, src.width, src.height)
        except rasterio.errors.RasterioIOError as exc:
            raise ProductError(f"{self.path}: cannot be opened ({exc})") from exc

    def read(self, window: Window) -> np.ndarray:
        """Raw values of `window` (boundless: outside the file reads 0)."""
        try:
            with rasterio.open(self.path) as src:
                return src.read(self.band_index, window=window,
                                boundless=True, fill_value=0)
        except rasterio.errors.RasterioIOError as exc:
            raise ProductError(
                f"{self.path}: band {self.band_index} cannot be read "
                f"({exc}); the file is damaged or cut short: download it "
                "again") from exc


@dataclass(frozen=True)
class BandSource:
    """A spectral band and how its digital numbers become reflectance."""

    name: str
    """Band name as users write it in config, e.g. "B11" or "SR_B6"."""
    raster: RasterSource
    """Where the digital numbers are."""
    scale: float = 1.0
    """Reflectance = dn * scale + offset."""
    offset: float = 0.0
    """See `scale`."""
    nodata: tuple[float, ...] = (0,)
    """Digital numbers that mean fill (never reflectance)."""
    valid_range: tuple[float, float] | None = None
    """Inclusive (min, max) digital numbers that are valid; None: all."""

    def reflectance(self, dn: np.ndarray) -> np.ndarray:
        """float32 reflectance of `dn`, NaN where the value is not valid."""
        out = dn.astype(np.float32) * np.float32(self.scale)
        out += np.float32(self.offset)
        invalid = np.isin(dn, self.nodata)
        if self.valid_range is not None:
            lo, hi = self.valid_range
            invalid |= (dn < lo) | (dn > hi)
        out[invalid] = np.nan
        return out


@dataclass(frozen=True)
class MaskSource:
    """A quality layer and the rule that marks unusable pixels in it.

    ``kind`` is one of:

    - ``"classes"``: values listed in `values` are unusable (Sentinel-2 SCL);
    - ``"bits"``: a pixel is unusable if any bit numbered in `values` is set
      (Landsat QA_PIXEL);
    - ``"nonzero"``: any non-zero value is unusable (Landsat QA_RADSAT).
    """

    name: str
    """Name of the layer, for messages ("SCL", "QA_PIXEL")."""
    raster: RasterSource
    """Where the quality values are."""
    kind: str
    """How values are read; see the class docstring."""
    values: tuple[int, ...] = ()
    """Classes or bit numbers that mark a pixel unusable."""

    def unusable(self, qa: np.ndarray) -> np.ndarray:
        """Boolean array, True where `qa` marks the pixel unusable."""
        if self.kind == "classes":
            return np.isin(qa, self.values)
        if self.kind == "bits":
            bits = 0
            for bit in self.values:
                bits |= 1 << bit
            return (qa.astype(np.uint64) & np.uint64(bits)) != 0
        if self.kind == "nonzero":
            return qa != 0
        raise ValueError(f"MaskSource {self.name}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class Product:
    """A scene as lithomap reads it: bands, quality masks, metadata."""

    sensor: str
    """Sensor family as in config: "sentinel2", "landsat", "aster", ..."""
    path: str
    """The product as the user gave it (folder, archive or file)."""
    scene_id: str
    """Provider's identifier of the scene."""
    bands: dict[str, BandSource]
    """The bands asked for, by name, in the order asked."""
    masks: tuple[MaskSource, ...] = ()
    """Quality layers; a pixel is usable only where none flags it."""
    acquired: dt.datetime | None = None
    """Acquisition time (UTC), when the metadata gives it."""
    metadata: dict = field(default_factory=dict)
    """Anything else worth reporting (processing baseline, sun angles...)."""


def require_bands(product_path: str, available: dict, wanted: list[str]):
    """Return ``{name: available[name]}`` for `wanted`, or a clear error."""
    missing = [b for b in wanted if b not in available]
    if missing:
        raise ProductError(
            f"{product_path}: no band {', '.join(missing)} in this product; "
            f"it has {', '.join(sorted(available))}. Fix the region's "
            "'bands' list in config.yaml")
    return {b: available[b] for b in wanted}
