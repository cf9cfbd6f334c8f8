"""Tests of the Landsat 8/9 Collection 2 reader on the real sample products.

Expected values are computed here from first principles (raw digital
numbers read with rasterio, MTL numbers picked out with a regular
expression, bits tested with numpy), never through the reader's own code.
"""

import logging
import math
import re
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from lithomap import grid
from lithomap.products import landsat, open_product
from lithomap.products.base import Georef, ProductError
from lithomap.products.mtl import parse_mtl

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LANDSAT = SHARED / "data" / "landsat"
FOLDER = "LC08_L2SP_005009_20150710_20200908_02_T2"
BRUMADINHO = "LC08_L2SP_218074_20190114_20200829_02_T1"
BRUMADINHO_LATE = "LC08_L2SP_218074_20190130_20200829_02_T1"
MAUI = "LC09_L1TP_063046_20230714_20230714_02_T1"
MOMOTOMBO_L1 = "LC08_L1TP_017051_20151205_20200908_02_T1"
MOMOTOMBO_L2 = "LC08_L2SP_017051_20151205_20200908_02_T1"
SR_B2_B7 = [f"SR_B{n}" for n in range(2, 8)]

# Every real product, with the bands its files hold.
PRODUCTS = {
    BRUMADINHO: SR_B2_B7,
    BRUMADINHO_LATE: SR_B2_B7,
    MOMOTOMBO_L2: SR_B2_B7,
    MOMOTOMBO_L1: [f"B{n}" for n in range(2, 8)],
    MAUI: [f"B{n}" for n in range(1, 8)],
    FOLDER: [f"SR_B{n}" for n in range(1, 8)],
}
ARCHIVES = [p for p in PRODUCTS if p != FOLDER]
NO_SIDECAR = {"CPL_VSIL_GZIP_WRITE_PROPERTIES": "NO"}


def product_path(stem: str) -> Path:
    """Folder or archive of a sample product."""
    if stem == FOLDER:
        return LANDSAT / stem
    return LANDSAT / f"{stem}-cropped.tar.gz"


def mtl_text(stem: str) -> str:
    """The product's MTL.txt, read without the reader."""
    path = product_path(stem)
    if path.is_dir():
        return (path / f"{stem}_MTL.txt").read_text()
    with tarfile.open(path) as tar:
        return tar.extractfile(f"{stem}_MTL.txt").read().decode()


def mtl_value(text: str, group: str, key: str) -> float:
    """A number of one MTL group, by regular expression."""
    block = re.search(rf"GROUP = {group}\n(.*?)END_GROUP = {group}", text,
                      re.S).group(1)
    return float(re.search(rf"^\s*{key} = \"?([^\"\s]+)", block,
                           re.M).group(1))


def band_file(stem: str, band: str) -> str:
    """GDAL path of one band file of a sample product."""
    name = f"{stem}_{band}.TIF"
    path = product_path(stem)
    if path.is_dir():
        return str(path / name)
    return f"/vsitar/{path}/{name}"


def read_raw(gdal_path: str) -> np.ndarray:
    """Whole first band of a file, as stored."""
    with rasterio.Env(**NO_SIDECAR), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(gdal_path) as src:
            return src.read(1)


def expected_reflectance(stem: str, band: str, dn) -> np.ndarray:
    """Reflectance of `dn` by the USGS formula and the product's MTL."""
    text = mtl_text(stem)
    number = int(band.rsplit("B", 1)[1])
    if band.startswith("SR_"):
        group = "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"
        sine = 1.0
    else:
        group = "LEVEL1_RADIOMETRIC_RESCALING"
        elevation = mtl_value(text, "IMAGE_ATTRIBUTES", "SUN_ELEVATION")
        sine = math.sin(math.radians(elevation))
    mult = mtl_value(text, group, f"REFLECTANCE_MULT_BAND_{number}")
    add = mtl_value(text, group, f"REFLECTANCE_ADD_BAND_{number}")
    return (np.asarray(dn, np.float64) * mult + add) / sine


def extract(stem: str, dest: Path) -> Path:
    """Folder copy of a sample archive under `dest`."""
    folder = dest / stem
    with tarfile.open(product_path(stem)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def native_grid(product) -> Georef:
    """Georeferencing of the product's first band."""
    return next(iter(product.bands.values())).raster.open_georef()


@pytest.fixture(scope="module")
def brumadinho():
    """The Brumadinho crop of 2019-01-14, opened from its archive."""
    return open_product("landsat", str(product_path(BRUMADINHO)),
                        bands=SR_B2_B7)


# -- reflectance ------------------------------------------------------------

@pytest.mark.parametrize("stem", list(PRODUCTS), ids=list(PRODUCTS))
def test_reflectance_follows_mtl_formula(stem):
    """Every band's reflectance equals dn * MULT + ADD (/ sin elevation)."""
    product = open_product("landsat", str(product_path(stem)),
                           bands=PRODUCTS[stem])
    for name, band in product.bands.items():
        dn = read_raw(band_file(stem, name))
        # The brightest pixel, and the first and the 1000th of the data.
        data = np.flatnonzero(dn)
        picked = dn.ravel()[[int(np.argmax(dn)), data[0], data[999]]]
        assert (picked > 0).all(), f"{name}: picked a fill pixel"
        got = band.reflectance(picked)
        want = expected_reflectance(stem, name, picked)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6,
                                   err_msg=f"{stem} {name}")
        assert np.isnan(band.reflectance(np.array([0], np.uint16)))[0]


def test_level2_uses_level2_factors_not_level1(brumadinho):
    """An L2 MTL also holds Level-1 factors; SR must use the L2 ones."""
    band = brumadinho.bands["SR_B4"]
    text = mtl_text(BRUMADINHO)
    l1_mult = mtl_value(text, "LEVEL1_RADIOMETRIC_RESCALING",
                        "REFLECTANCE_MULT_BAND_4")
    assert l1_mult != pytest.approx(band.scale)
    assert band.scale == mtl_value(
        text, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS",
        "REFLECTANCE_MULT_BAND_4")
    assert brumadinho.metadata["reflectance"] == "surface"


def test_level1_is_top_of_atmosphere_with_sun_elevation():
    """Level-1 scale and offset are the MTL's divided by sin(SUN_ELEV)."""
    product = open_product("landsat", str(product_path(MAUI)),
                           bands=["B3"])
    text = mtl_text(MAUI)
    sine = math.sin(math.radians(
        mtl_value(text, "IMAGE_ATTRIBUTES", "SUN_ELEVATION")))
    band = product.bands["B3"]
    assert band.scale == pytest.approx(2.0e-05 / sine, rel=1e-12)
    assert band.offset == pytest.approx(-0.1 / sine, rel=1e-12)
    assert band.valid_range == (1.0, 65535.0)
    assert product.metadata["reflectance"] == "top_of_atmosphere"
    assert product.metadata["spacecraft"] == "LANDSAT_9"


def test_metadata_of_the_scene(brumadinho):
    """Scene id, acquisition time and sun angles come from the MTL."""
    assert brumadinho.sensor == "landsat"
    assert brumadinho.scene_id == BRUMADINHO
    assert brumadinho.acquired.isoformat() == \
        "2019-01-14T12:57:13.180496+00:00"
    assert brumadinho.metadata["sun_elevation"] == pytest.approx(59.9219671)
    assert brumadinho.metadata["processing_level"] == "L2SP"


def test_default_bands_follow_the_level():
    """bands=None reads SR_B1..SR_B7 from L2 and B1..B7 from L1."""
    l2 = open_product("landsat", str(product_path(FOLDER)))
    l1 = open_product("landsat", str(product_path(MAUI)))
    assert list(l2.bands) == landsat.DEFAULT_BANDS_L2 == \
        [f"SR_B{n}" for n in range(1, 8)]
    assert list(l1.bands) == landsat.DEFAULT_BANDS_L1 == \
        [f"B{n}" for n in range(1, 8)]


# -- band names across levels ---------------------------------------------

def test_level2_names_read_level1_product_as_toa(caplog):
    """SR_B4 asked of an L1 product reads B4 (TOA) and warns about it."""
    with caplog.at_level(logging.WARNING, logger="lithomap"):
        product = open_product("landsat", str(product_path(MAUI)),
                               bands=["SR_B4", "SR_B5"])
    assert list(product.bands) == ["SR_B4", "SR_B5"]
    assert product.bands["SR_B4"].raster.path.endswith(f"{MAUI}_B4.TIF")
    assert "top of atmosphere" in caplog.text
    assert "SR_B4, SR_B5" in caplog.text


def test_level1_names_read_level2_product(brumadinho):
    """B4 asked of an L2 product reads SR_B4, under the name B4."""
    product = open_product("landsat", str(product_path(BRUMADINHO)),
                           bands=["B4"])
    band = product.bands["B4"]
    assert band.raster.path.endswith(f"{BRUMADINHO}_SR_B4.TIF")
    assert band.scale == brumadinho.bands["SR_B4"].scale


# -- masks ------------------------------------------------------------------

def qa_arrays():
    """QA_PIXEL and QA_RADSAT of the cloudy full-product folder."""
    folder = product_path(FOLDER)
    return (read_raw(str(folder / f"{FOLDER}_QA_PIXEL.TIF")),
            read_raw(str(folder / f"{FOLDER}_QA_RADSAT.TIF")))


@pytest.mark.parametrize(
    "options, bits",
    [({}, [0, 1, 2, 3, 4]),
     ({"mask_snow": True}, [0, 1, 2, 3, 4, 5]),
     ({"mask_dilated_cloud": False}, [0, 2, 3, 4]),
     ({"mask_cirrus": False, "mask_water": True}, [0, 1, 3, 4, 7])],
    ids=["defaults", "snow", "no-dilated", "water-not-cirrus"])
def test_qa_pixel_mask_counts(options, bits):
    """QA_PIXEL flags exactly the pixels whose chosen bits are set."""
    product = open_product("landsat", str(product_path(FOLDER)), **options)
    qa, _ = qa_arrays()
    want = np.zeros(qa.shape, bool)
    for bit in bits:
        want |= (qa >> bit) & 1 == 1

    mask = {m.name: m for m in product.masks}["QA_PIXEL"]
    window = Window(0, 0, qa.shape[1], qa.shape[0])
    got = mask.unusable(mask.raster.read(window))
    assert got.sum() == want.sum()
    assert (got == want).all()


def test_cloud_bit_matches_scene_cloud_cover():
    """The QA_PIXEL cloud bit covers about the MTL's CLOUD_COVER."""
    qa, _ = qa_arrays()
    filled = (qa & 1) == 1
    cloud = ((qa >> 3) & 1) == 1
    share = 100 * cloud.sum() / (~filled).sum()
    cover = mtl_value(mtl_text(FOLDER), "IMAGE_ATTRIBUTES", "CLOUD_COVER")
    assert share == pytest.approx(cover, abs=1.0)
    assert 50 < share < 60


def test_radsat_mask_flags_saturation_of_read_bands_and_occlusion():
    """QA_RADSAT masks bit n-1 of each band n read, and bit 11."""
    product = open_product("landsat", str(product_path(FOLDER)),
                           bands=["SR_B2", "SR_B6"])
    mask = {m.name: m for m in product.masks}["QA_RADSAT"]
    assert mask.values == (1, 5, 11)
    _, radsat = qa_arrays()
    want = ((radsat >> 1) & 1 | (radsat >> 5) & 1 | (radsat >> 11) & 1) == 1
    assert want.sum() == 5  # terrain occlusion only in this scene
    assert (mask.unusable(radsat) == want).all()


def test_no_radsat_mask_when_saturation_is_off():
    """mask_saturation=False leaves QA_PIXEL as the only mask."""
    product = open_product("landsat", str(product_path(FOLDER)),
                           mask_saturation=False)
    assert [m.name for m in product.masks] == ["QA_PIXEL"]


def test_chunk_of_cloudy_scene_masks_what_numpy_says():
    """read_product_chunk leaves NaN exactly where QA, RADSAT or DN say."""
    product = open_product("landsat", str(product_path(FOLDER)))
    native = native_grid(product)
    out = grid.read_product_chunk(product, grid.product_georefs(product),
                                  native, "nearest")
    qa, radsat = qa_arrays()
    unusable = (qa & 0b11111) != 0
    unusable |= (radsat & (0b1111111 | 1 << 11)) != 0
    for n in range(1, 8):
        unusable |= read_raw(band_file(FOLDER, f"SR_B{n}")) == 0
    assert out.shape == (7, 512, 512)
    assert np.isnan(out[0]).sum() == unusable.sum()
    assert (np.isnan(out).all(axis=0) == unusable).all()
    dn = read_raw(band_file(FOLDER, "SR_B5"))
    np.testing.assert_allclose(
        out[4][~unusable],
        expected_reflectance(FOLDER, "SR_B5", dn[~unusable]), atol=1e-6)


def test_crop_without_qa_warns(caplog):
    """A product without QA_PIXEL is read, with a warning saying so."""
    with caplog.at_level(logging.WARNING, logger="lithomap"):
        product = open_product("landsat", str(product_path(BRUMADINHO)),
                               bands=SR_B2_B7)
    assert product.masks == ()
    assert "no QA_PIXEL file" in caplog.text


# -- georeferencing ---------------------------------------------------------

@pytest.mark.parametrize("stem", ARCHIVES, ids=ARCHIVES)
def test_crop_georeferencing_rebuilt_from_mtl_corners(stem):
    """Crops without a CRS sit where the MTL's pixel-centre corners say."""
    text = mtl_text(stem)
    group = "PROJECTION_ATTRIBUTES"
    zone = int(mtl_value(text, group, "UTM_ZONE"))
    cell = mtl_value(text, group, "GRID_CELL_SIZE_REFLECTIVE")
    ulx = mtl_value(text, group, "CORNER_UL_PROJECTION_X_PRODUCT")
    uly = mtl_value(text, group, "CORNER_UL_PROJECTION_Y_PRODUCT")
    lrx = mtl_value(text, group, "CORNER_LR_PROJECTION_X_PRODUCT")
    lry = mtl_value(text, group, "CORNER_LR_PROJECTION_Y_PRODUCT")

    product = open_product("landsat", str(product_path(stem)),
                           bands=PRODUCTS[stem])
    for name, band in product.bands.items():
        ref = band.raster.open_georef()
        assert ref.crs == CRS.from_epsg(32600 + zone)
        assert ref.transform == Affine(cell, 0, ulx - cell / 2,
                                       0, -cell, uly + cell / 2)
        # The corners are pixel centres: centre of the last pixel = LR.
        assert ref.transform * (ref.width - 0.5, ref.height - 0.5) == \
            (lrx, lry)
        assert read_raw(band_file(stem, name)).shape == \
            (ref.height, ref.width)
    assert len(product.metadata["georef_from_mtl"]) == len(PRODUCTS[stem])


def test_brumadinho_lies_in_brazil(brumadinho):
    """The south-hemisphere crop (north zone, negative northing) is placed
    over Brumadinho, Minas Gerais, and within the MTL's lat/lon corners."""
    ref = native_grid(brumadinho)
    assert ref.crs == CRS.from_epsg(32623)
    left, bottom, right, top = ref.bounds
    assert top < 0
    lon, lat = warp_transform(ref.crs, "EPSG:4326", [(left + right) / 2],
                              [(bottom + top) / 2])
    assert lat[0] == pytest.approx(-20.14, abs=0.05)
    assert lon[0] == pytest.approx(-44.14, abs=0.05)


def test_wrong_utm_zone_is_noticed(tmp_path, caplog):
    """An MTL whose zone disagrees with its lat/lon corners warns."""
    folder = extract(BRUMADINHO, tmp_path)
    mtl = folder / f"{BRUMADINHO}_MTL.txt"
    mtl.write_text(mtl.read_text().replace("UTM_ZONE = 23", "UTM_ZONE = 25"))
    with caplog.at_level(logging.WARNING, logger="lithomap"):
        open_product("landsat", str(folder), bands=["SR_B4"])
    assert "outside the scene's lat/lon corners" in caplog.text


def test_file_georeferencing_wins_over_mtl_with_warning(caplog):
    """The folder's TIFs (512 px of 515 m) keep their own georef."""
    with caplog.at_level(logging.WARNING, logger="lithomap"):
        product = open_product("landsat", str(product_path(FOLDER)))
    ref = native_grid(product)
    with rasterio.open(band_file(FOLDER, "SR_B1")) as src:
        assert (ref.crs, ref.transform) == (src.crs, src.transform)
    assert ref.crs == CRS.from_epsg(32624)
    assert (ref.width, ref.height) == (512, 512)
    assert "differs from the MTL's" in caplog.text
    assert "the file's own is used" in caplog.text
    assert product.metadata["georef_from_mtl"] == []


def test_mtl_grid_of_full_product():
    """mtl_georef gives the full product's 30 m grid, edges half a cell
    outside the corner centres."""
    mtl = parse_mtl(f"{FOLDER}_MTL.txt", mtl_text(FOLDER))
    ref = landsat.mtl_georef(mtl)
    assert (ref.width, ref.height) == (8791, 8821)
    assert ref.transform.c == 365700.0 - 15
    assert ref.transform.f == 8143800.0 + 15
    assert landsat.mtl_crs(mtl) == CRS.from_epsg(32624)


# -- archive, folder and MTL inputs ---------------------------------------

def tar_copy(folder: Path, dest: Path) -> Path:
    """An uncompressed .tar of `folder`'s files, members at the top."""
    path = dest / f"{folder.name}.tar"
    with tarfile.open(path, "w") as tar:
        for file in sorted(folder.iterdir()):
            tar.add(file, arcname=file.name)
    return path


@pytest.mark.parametrize("stem", [BRUMADINHO, MAUI], ids=["L2SP", "L1TP"])
def test_archive_folder_tar_and_mtl_give_identical_stacks(stem, tmp_path):
    """The .tar.gz, its unpacked folder, a plain .tar and the MTL path
    all give the same stack through lithomap.grid.lazy_stack."""
    folder = extract(stem, tmp_path)
    inputs = {"tar.gz": product_path(stem), "folder": folder,
              "tar": tar_copy(folder, tmp_path),
              "mtl": folder / f"{stem}_MTL.txt"}
    bands = PRODUCTS[stem][-3:]
    products = {kind: open_product("landsat", str(path), bands=bands)
                for kind, path in inputs.items()}
    native = native_grid(products["tar.gz"])
    left, _, _, top = native.bounds
    aoi = grid.AOI((left + 300, top - 3300, left + 3300, top - 300))
    region = grid.make_grid(native.crs, 30, aoi)
    stacks = {kind: grid.lazy_stack([p], region, aoi, chunk_px=64)
              .compute(scheduler="synchronous")
              for kind, p in products.items()}
    assert stacks["tar.gz"].shape == (3, 100, 100)
    assert np.isfinite(stacks["tar.gz"]).mean() > 0.9
    for kind in ("folder", "tar", "mtl"):
        np.testing.assert_array_equal(stacks[kind], stacks["tar.gz"],
                                      err_msg=kind)


def test_tiny_grid_chunk_matches_raw_pixels(brumadinho):
    """read_product_chunk on a 20 x 20 grid over the scene (aligned with
    its pixels, hanging 5 px off its west edge) gives the raw pixels'
    reflectance inside and NaN outside."""
    native = native_grid(brumadinho)
    row0, col0 = 40, -5
    dst = Georef(native.crs, native.transform * Affine.translation(
        col0, row0), 20, 20)
    out = grid.read_product_chunk(brumadinho, grid.product_georefs(
        brumadinho), dst, "nearest")
    assert out.shape == (6, 20, 20)
    assert np.isnan(out[:, :, :5]).all()
    dn = read_raw(band_file(BRUMADINHO, "SR_B6"))[row0:row0 + 20, 0:15]
    np.testing.assert_allclose(
        out[4, :, 5:], expected_reflectance(BRUMADINHO, "SR_B6", dn),
        atol=1e-6)


def test_two_dates_mosaic_on_one_grid():
    """Both Brumadinho dates share the 30 m lattice: 900 m apart in x."""
    early, late = (open_product("landsat", str(product_path(s)),
                                bands=SR_B2_B7)
                   for s in (BRUMADINHO, BRUMADINHO_LATE))
    a, b = native_grid(early), native_grid(late)
    assert a.crs == b.crs
    assert b.transform.c - a.transform.c == 900.0
    assert b.transform.f == a.transform.f
    aoi = grid.AOI((a.bounds[0], a.bounds[1], b.bounds[2], a.bounds[3]))
    region = Georef(a.crs, a.transform, 430, 300)
    stack = grid.lazy_stack([early, late], region, aoi, chunk_px=128,
                            resampling="nearest").compute(
                                scheduler="synchronous")
    # The last 30 columns exist only in the later scene.
    assert np.isfinite(stack[:, :, 400:]).mean() > 0.9
    dn = read_raw(band_file(BRUMADINHO_LATE, "SR_B2"))[:, 370:]
    np.testing.assert_allclose(
        stack[0, :, 400:], expected_reflectance(BRUMADINHO_LATE, "SR_B2",
                                                dn), atol=1e-6)


def test_reading_archives_writes_nothing_beside_them(brumadinho):
    """No GDAL .properties side-car appears next to the sample archives."""
    native = native_grid(brumadinho)
    grid.read_product_chunk(brumadinho, grid.product_georefs(brumadinho),
                            native, "nearest")
    assert list(LANDSAT.glob("*.properties")) == []


@pytest.mark.parametrize("suffix", ["json", "xml"])
def test_json_and_xml_metadata_give_the_same_product(suffix):
    """Opening by MTL.json or MTL.xml gives the MTL.txt's numbers."""
    folder = product_path(FOLDER)
    by_txt = open_product("landsat", str(folder))
    other = open_product("landsat", str(folder / f"{FOLDER}_MTL.{suffix}"))
    assert other.metadata["mtl"].endswith(suffix)
    for name, band in by_txt.bands.items():
        twin = other.bands[name]
        assert (twin.scale, twin.offset, twin.valid_range) == \
            (band.scale, band.offset, band.valid_range)
    assert [m.values for m in other.masks] == \
        [m.values for m in by_txt.masks]
    assert other.acquired == by_txt.acquired


# -- bad input ---------------------------------------------------------------

COLLECTION1_MTL = """GROUP = L1_METADATA_FILE
  GROUP = METADATA_FILE_INFO
    ORIGIN = "Image courtesy of the U.S. Geological Survey"
    LANDSAT_PRODUCT_ID = "LC08_L1TP_218074_20190114_20190130_01_T1"
  END_GROUP = METADATA_FILE_INFO
  GROUP = RADIOMETRIC_RESCALING
    REFLECTANCE_MULT_BAND_4 = 2.0000E-05
  END_GROUP = RADIOMETRIC_RESCALING
END_GROUP = L1_METADATA_FILE
END
"""


def test_collection1_mtl_is_refused(tmp_path):
    """A Collection 1 MTL stops with a message naming it as such."""
    name = "LC08_L1TP_218074_20190114_20190130_01_T1_MTL.txt"
    (tmp_path / name).write_text(COLLECTION1_MTL)
    with pytest.raises(ProductError, match=rf"{name}: this is a Collection "
                       "1 MTL"):
        open_product("landsat", str(tmp_path))


@pytest.mark.parametrize(
    "key", ["REFLECTANCE_MULT_BAND_4", "REFLECTANCE_ADD_BAND_4",
            "CORNER_UL_PROJECTION_X_PRODUCT", "UTM_ZONE"])
def test_mtl_without_needed_field_is_refused(key, tmp_path):
    """An MTL lacking a value the reader needs names the file and key."""
    folder = extract(BRUMADINHO, tmp_path)
    mtl = folder / f"{BRUMADINHO}_MTL.txt"
    text = mtl.read_text()
    # Drop the key from its first group only: the Level-1 copies further
    # down must not stand in for the Level-2 values.
    start = text.index(f" {key} =")
    end = text.index("\n", start)
    mtl.write_text(text[:text.rindex("\n", 0, start)] + text[end:])
    with pytest.raises(ProductError,
                       match=rf"{BRUMADINHO}_MTL\.txt: no {key} in group"):
        open_product("landsat", str(folder), bands=["SR_B4"])


def test_band_file_missing_from_archive():
    """SR_B1 is listed in the MTL but not shipped in the crop."""
    path = product_path(BRUMADINHO)
    with pytest.raises(ProductError, match=rf"{re.escape(str(path))}: band "
                       rf"SR_B1 file {BRUMADINHO}_SR_B1\.TIF is listed in "
                       "the MTL but missing from the archive"):
        open_product("landsat", str(path), bands=["SR_B1", "SR_B2"])


@pytest.mark.parametrize("kind", ["tar.gz", "tar"])
def test_truncated_archive_is_refused(kind, tmp_path):
    """An archive cut short stops with an error naming it."""
    if kind == "tar.gz":
        data = product_path(BRUMADINHO).read_bytes()
    else:
        data = tar_copy(extract(BRUMADINHO, tmp_path), tmp_path).read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(ProductError, match=rf"cut\.{re.escape(kind)}: the "
                       "archive cannot be read .* cut short"):
        open_product("landsat", str(cut))


@pytest.mark.parametrize("with_crs", [False, True],
                         ids=["no-georef", "own-georef"])
def test_qa_pixel_of_wrong_shape_is_refused(with_crs, tmp_path):
    """A QA_PIXEL that does not match the bands stops, naming the file."""
    folder = extract(BRUMADINHO, tmp_path)
    name = f"{BRUMADINHO}_QA_PIXEL.TIF"
    profile = {"driver": "GTiff", "width": 10, "height": 10, "count": 1,
               "dtype": "uint16"}
    if with_crs:
        profile.update(crs="EPSG:32623", transform=Affine(
            30, 0, 583485, 0, -30, -2222685))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(folder / name, "w", **profile) as dst:
            dst.write(np.zeros((1, 10, 10), np.uint16))
    with pytest.raises(ProductError, match=rf"{name} \(QA_PIXEL\)"
                       r".*10 x 10 px"):
        open_product("landsat", str(folder), bands=["SR_B4"])


def test_band_whose_size_disagrees_with_mtl_is_refused():
    """The crop's 15 m B8 is 668 rows, not the 667 its corners give."""
    with pytest.raises(ProductError, match=r"_B8\.TIF \(band B8\) has no "
                       r"georeferencing and is 935 x 668 px, but the MTL's "
                       r"corners and GRID_CELL_SIZE_PANCHROMATIC describe "
                       r"935 x 667 px"):
        open_product("landsat", str(product_path(MOMOTOMBO_L1)),
                     bands=["B4", "B8"])


def not_landsat_inputs(tmp_path):
    """Paths that exist but hold no Landsat product."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a product")
    bare = tmp_path / "bare.tar"
    with tarfile.open(bare, "w") as tar:
        tar.add(empty / "notes.txt", arcname="notes.txt")
    playa = SHARED / "data" / "landsat5_playa" / "Playa_Image.tif"
    return {"folder": empty, "tar": bare, "geotiff": playa}


@pytest.mark.parametrize("kind", ["folder", "tar", "geotiff"])
def test_path_that_is_not_landsat_is_refused(kind, tmp_path):
    """A folder, archive or file without an MTL is not a product."""
    path = not_landsat_inputs(tmp_path)[kind]
    with pytest.raises(ProductError, match=rf"{re.escape(str(path))}: not "
                       "a recognised Landsat product"):
        open_product("landsat", str(path))


@pytest.mark.parametrize(
    "bands, message",
    [(["B10"], r"band B10 is thermal"),
     (["red"], r"band 'red' is not a Landsat band name"),
     (["B9"], r"no band B9 in this Level-2 product; it has SR_B1, "),
     (["B4", "B4"], r"name a band twice"),
     ("B4", r"bands must be a non-empty list")],
    ids=["thermal", "not-a-name", "not-in-mtl", "twice", "string"])
def test_bad_band_lists_are_refused(bands, message):
    """Band lists the product cannot serve stop with a clear message."""
    path = MAUI if bands != ["B9"] else BRUMADINHO
    with pytest.raises(ProductError, match=message):
        open_product("landsat", str(product_path(path)), bands=bands)


def test_non_bool_option_is_refused():
    """Masking options must be true or false."""
    with pytest.raises(ProductError, match=r"option mask_snow: expected "
                       r"true or false. Received: 'yes'"):
        open_product("landsat", str(product_path(MAUI)), mask_snow="yes")


def test_other_landsat_missions_are_sent_to_geotiff(tmp_path):
    """A Landsat 7 MTL is refused with a pointer to the geotiff reader."""
    folder = extract(BRUMADINHO, tmp_path)
    mtl = folder / f"{BRUMADINHO}_MTL.txt"
    mtl.write_text(mtl.read_text().replace('"LANDSAT_8"', '"LANDSAT_7"'))
    with pytest.raises(ProductError, match=r"SPACECRAFT_ID is LANDSAT_7.*"
                       "sensor 'geotiff'"):
        open_product("landsat", str(folder))


def test_two_products_in_one_folder_are_refused(tmp_path):
    """A folder with the MTLs of two scenes is ambiguous."""
    for stem in (BRUMADINHO, BRUMADINHO_LATE):
        (tmp_path / f"{stem}_MTL.txt").write_text(mtl_text(stem))
    with pytest.raises(ProductError, match="holds the metadata of 2 "
                       "products"):
        open_product("landsat", str(tmp_path))

