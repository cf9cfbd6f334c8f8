"""Tests of the ASTER reader on synthetic AST_L1T and AST_07XT files.

No real ASTER product is available to the project, so the files are written
by `lithomap.products.aster_fixture` with the structure the product
documents describe:

- "Advanced Spaceborne Thermal Emission and Reflection Radiometer (ASTER)
  Level 1 Precision Terrain Corrected Registered At-Sensor Radiance Product
  (AST_L1T), AST_L1T Product User's Guide", version 1.0, 8 May 2015
  (USGS EROS / LP DAAC): HDF-EOS2 swaths VNIR_Swath, SWIR_Swath, TIR_Swath
  with ImageData1 .. ImageData14, 11 x 11 Latitude/Longitude geolocation;
- "ASTER Users Handbook", version 2 (Abrams, Hook, Ramachandran; JPL):
  unit conversion coefficients per gain (table 5), radiance = (DN - 1) UCC;
- "ASTER Higher-Level Product User Guide", version 2.0, May 2001 (JPL
  D-20062): productmetadata.0 / coremetadata.0 ODL metadata, surface
  reflectance (AST_07) scaled by 0.001, shipped as a VNIR and a SWIR file;
- the LP DAAC AST_L1T DN-to-reflectance tutorial (ASTERL1T_DN2REF, 2017)
  for the metadata names read there: GAIN, SOLARDIRECTION, CALENDARDATE,
  UPPERLEFTM, LOWERRIGHTM, UTMZONENUMBER, and the ESUN values of Thome et
  al.

Expected reflectances are written out from those documents' formulas with
literal numbers, not computed by the reader's functions.
"""

import datetime as dt
import math
import os
import pickle
import shutil
import warnings
import zipfile

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from lithomap import grid
from lithomap.products import open_product as open_any
from lithomap.products import aster
from lithomap.products import aster_fixture as fx
from lithomap.products.base import Georef, ProductError

# Scene constants of the fixture (Cuprite, Nevada; 2005-06-18, day 169).
SIN_60 = math.sin(math.radians(60.0))
D2_DAY169 = (1 - 0.01672 * math.cos(math.radians(0.9856 * (169 - 4)))) ** 2
UCC_LITERAL = {("1", "HGH"): 0.676, ("1", "NOR"): 1.688, ("1", "LO1"): 2.25,
               ("2", "LO1"): 1.89, ("3N", "NOR"): 0.862,
               ("4", "HGH"): 0.1087, ("4", "LO2"): 0.290,
               ("5", "NOR"): 0.0696, ("7", "LO1"): 0.0795,
               ("9", "LO2"): 0.265}
ESUN_LITERAL = {"1": 1848.0, "2": 1549.0, "3N": 1114.0, "4": 225.4,
                "5": 86.63, "7": 74.85, "9": 59.85}


def _hdf_dn(path, field, row, col):
    """A DN read straight from the file with pyhdf, by SDS name."""
    from pyhdf.SD import SD, SDC

    sd = SD(str(path), SDC.READ)
    try:
        # pyhdf mis-reads scalar indices of uint16 SDS; slice instead.
        return int(sd.select(field)[row:row + 1, col:col + 1][0, 0])
    finally:
        sd.end()


def _pixel(product, band, row, col):
    """Reflectance the reader gives for one native pixel."""
    source = product.bands[band]
    return float(source.reflectance(source.raster.read(
        Window(col, row, 1, 1)))[0, 0])


@pytest.fixture(scope="module")
def l1t_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("l1t") / "AST_L1T_cuprite.hdf"
    fx.make_l1t(str(path), seed=3, vnir_px=60)
    return path


def _small_l1t(tmp_path, name="scene.hdf", vnir_px=12, **options):
    path = tmp_path / name
    scene = fx.make_l1t(str(path), seed=5, vnir_px=vnir_px, **options)
    return path, scene


def test_odl_parser_reads_objects_classes_and_multiline_tuples():
    """ODL objects come back by name with CLASS and tuple values."""
    text = ('GROUP = GAININFORMATION\n'
            '  OBJECT = GAIN\n    CLASS = "1"\n    NUM_VAL = 2\n'
            '    VALUE = ("01",\n             "HGH")\n  END_OBJECT = GAIN\n'
            'END_GROUP = GAININFORMATION\n'
            'OBJECT = SOLARDIRECTION\n  VALUE = (135.5, 60.25)\n'
            'END_OBJECT = SOLARDIRECTION\nEND\n')
    meta = aster.Metadata.from_odl({"productmetadata.0": text})
    assert meta.gains() == {"01": "HGH"}
    assert meta.first("SOLARDIRECTION") == (135.5, 60.25)


def test_fixture_has_the_hdf_eos2_swath_structure(l1t_path):
    """The file holds SWATH Vgroups, ImageData fields and ODL attributes."""
    from pyhdf.SD import SD, SDC

    layout = aster.hdf_layout(str(l1t_path))
    assert set(layout) == {"VNIR_Swath", "SWIR_Swath", "TIR_Swath"}
    assert set(layout["VNIR_Swath"]["Data Fields"]) == {
        "ImageData1", "ImageData2", "ImageData3N"}
    assert set(layout["SWIR_Swath"]["Data Fields"]) == {
        f"ImageData{b}" for b in range(4, 10)}
    assert layout["SWIR_Swath"]["Geolocation Fields"]["Latitude"].shape == (
        11, 11)
    sd = SD(str(l1t_path), SDC.READ)
    attrs = sd.attributes()
    dims = sd.select("ImageData4").dimensions()
    sd.end()
    assert {"StructMetadata.0", "coremetadata.0",
            "productmetadata.0"} <= set(attrs)
    assert 'SwathName="SWIR_Swath"' in attrs["StructMetadata.0"]
    assert 'VALUE                = ("04", "NOR")' in attrs[
        "productmetadata.0"]
    assert list(dims) == ["ImageLine:SWIR_Swath", "ImagePixel:SWIR_Swath"]


def test_reflectance_of_dn_100_matches_the_handbook_formula(tmp_path):
    """DN 100, band 1, high gain, day 169, sun 60 deg -> 0.135597."""
    path, _ = _small_l1t(tmp_path, gains={"1": "HGH"},
                         dn_patch={"1": [(4, 5, 100)]})
    product = aster.open_product(str(path), bands=["1"])
    # rho = pi (DN - 1) UCC d^2 / (ESUN sin(elevation))
    expected = math.pi * 99 * 0.676 * 1.0321686 / (1848.0 * 0.8660254)
    assert expected == pytest.approx(0.135597, abs=1e-6)
    assert _pixel(product, "1", 4, 5) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("band, field, row, col", [
    ("1", "ImageData1", 7, 11), ("3N", "ImageData3N", 30, 2),
    ("4", "ImageData4", 3, 17), ("9", "ImageData9", 28, 0),
], ids=["band1", "band3N", "band4", "band9"])
def test_fixture_pixels_match_hand_calculation(l1t_path, band, field, row,
                                               col):
    """Reader reflectance equals the formula on the DN read with pyhdf."""
    product = aster.open_product(str(l1t_path), bands=[band])
    dn = _hdf_dn(l1t_path, field, row, col)
    ucc = {"1": 1.688, "3N": 0.862, "4": 0.2174, "9": 0.0318}[band]
    expected = (math.pi * (dn - 1) * ucc * D2_DAY169
                / (ESUN_LITERAL[band] * SIN_60))
    assert 1 <= dn <= 254
    assert _pixel(product, band, row, col) == pytest.approx(expected,
                                                            rel=1e-5)


@pytest.mark.parametrize("band, code", [
    ("1", "HGH"), ("1", "NOR"), ("1", "LO1"), ("4", "HGH"), ("4", "LO2"),
    ("5", "NOR"), ("7", "LO1"), ("9", "LO2"),
], ids=lambda v: str(v))
def test_each_gain_code_uses_its_conversion_coefficient(tmp_path, band,
                                                        code):
    """The DN factor is UCC[band, gain] pi d^2 / (ESUN sin(elevation))."""
    path, scene = _small_l1t(tmp_path, gains={band: code})
    product = aster.open_product(str(path), bands=[band])
    ucc = UCC_LITERAL[(band, code)]
    factor = math.pi * ucc * D2_DAY169 / (ESUN_LITERAL[band] * SIN_60)
    assert product.bands[band].scale == pytest.approx(factor, rel=1e-9)
    assert product.bands[band].offset == pytest.approx(-factor, rel=1e-9)
    assert product.metadata["gains"][band] == code
    # The round trip through the DN loses at most one DN step.
    got = _pixel(product, band, 2, 3)
    assert got == pytest.approx(scene.reflectance[band][2, 3],
                                abs=factor * 0.51)


def test_vnir_low_gain_written_low_reads_as_low_gain_1(tmp_path):
    """VNIR gain "LOW" takes the LO1 coefficient (band 2: 1.89)."""
    path, _ = _small_l1t(tmp_path, gains={"2": "LOW"})
    product = aster.open_product(str(path), bands=["2"])
    factor = math.pi * 1.89 * D2_DAY169 / (1549.0 * SIN_60)
    assert product.bands["2"].scale == pytest.approx(factor, rel=1e-9)


@pytest.mark.parametrize("band, code", [("2", "XYZ"), ("1", "LO2")],
                         ids=["unknown", "lo2-on-vnir"])
def test_unknown_gain_code_stops(tmp_path, band, code):
    """A gain code without a coefficient names the file and the band."""
    path, _ = _small_l1t(tmp_path, gains={band: code})
    with pytest.raises(ProductError,
                       match=rf"scene\.hdf: band {band}: gain code "
                             rf"'{code}' is unknown"):
        aster.open_product(str(path))


def test_missing_band_stops(tmp_path):
    """A band absent from its swath is named with the file."""
    path, _ = _small_l1t(tmp_path, drop_bands=("6",))
    with pytest.raises(ProductError,
                       match=r"scene\.hdf: band 6: no ImageData6 in "
                             r"SWIR_Swath"):
        aster.open_product(str(path))


def test_metadata_without_solar_angles_stops(tmp_path):
    """No SOLARDIRECTION: no reflectance; the option is named."""
    path, _ = _small_l1t(tmp_path, omit=("SOLARDIRECTION",))
    with pytest.raises(ProductError,
                       match=r"scene\.hdf: band 1: the metadata give no "
                             r"solar angles.*sun_elevation"):
        aster.open_product(str(path))
    product = aster.open_product(str(path), bands=["1"], sun_elevation=60.0)
    assert product.metadata["sun_elevation_deg"] == 60.0


def test_swir_request_on_a_file_without_swir_swath_stops(tmp_path):
    """A VNIR-only L1T asked for band 4 says the swath is missing."""
    path, _ = _small_l1t(tmp_path, subsystems=("VNIR",))
    with pytest.raises(ProductError,
                       match=r"scene\.hdf: band 4: the file has no "
                             r"SWIR_Swath \(it holds VNIR_Swath\)"):
        aster.open_product(str(path))
    assert list(aster.open_product(str(path), bands=["1", "3N"]).bands) == [
        "1", "3N"]


def test_swir_after_the_detector_failure_warns(tmp_path, caplog):
    """A 2009 scene asked for SWIR warns in the log and as a warning."""
    path, _ = _small_l1t(tmp_path, acquired=dt.datetime(2009, 3, 1, 18, 0))
    with pytest.warns(aster.SwirFailureWarning,
                      match=r"acquired 2009-03-01.*SWIR band\(s\) 4, 5, 6, "
                            r"7, 8, 9 kept"):
        product = aster.open_product(str(path))
    assert list(product.bands) == aster.DEFAULT_BANDS
    assert any(r.levelname == "WARNING" and "SWIR detectors failed"
               in r.getMessage() for r in caplog.records)


def test_exclude_failed_swir_drops_the_swir_bands(tmp_path):
    """With exclude_failed_swir, a 2009 scene keeps only VNIR."""
    path, _ = _small_l1t(tmp_path, acquired=dt.datetime(2009, 3, 1, 18, 0))
    with pytest.warns(aster.SwirFailureWarning, match="dropped"):
        product = aster.open_product(str(path), exclude_failed_swir=True)
    assert list(product.bands) == ["1", "2", "3N"]


def test_swir_before_the_failure_does_not_warn(l1t_path):
    """A 2005 scene reads SWIR without any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        product = aster.open_product(str(l1t_path))
    assert "4" in product.bands


@pytest.mark.parametrize("place, epsg, swir_origin", [
    ("cuprite", 32611, (478800.0, 4161000.0)),
    ("mutawintji", 32754, (620400.0, 6546000.0)),
], ids=["north", "south"])
def test_georeferencing_comes_from_the_corner_metadata(tmp_path, place, epsg,
                                                       swir_origin):
    """UL pixel centre + nominal size give each subsystem's UTM grid."""
    path, _ = _small_l1t(tmp_path, place=place)
    product = aster.open_product(str(path), include_tir=True)
    refs = grid.product_georefs(product)
    east, north = swir_origin
    assert refs["4"].crs.to_epsg() == epsg
    assert refs["4"].transform == Affine(30, 0, east, 0, -30, north)
    assert refs["1"].transform == Affine(15, 0, east + 7.5, 0, -15,
                                         north - 7.5)
    assert refs["10"].transform == Affine(90, 0, east - 30, 0, -90,
                                          north + 30)
    assert (refs["1"].width, refs["4"].width, refs["10"].width) == (12, 6, 2)


def test_vnir_and_swir_features_land_on_the_same_grid_pixel(tmp_path):
    """A bright spot planted in both swaths lands in one 30 m grid cell."""
    path, _ = _small_l1t(tmp_path, flat=True, vnir_px=60, n_units=1,
                         dn_patch={"1": [(20, 30, 250)], "4": [(10, 15, 250)]})
    product = aster.open_product(str(path), bands=["1", "4"])
    dst = Georef(product.bands["4"].raster.georef.crs,
                 Affine(30, 0, 478800, 0, -30, 4161000), 30, 30)
    values = grid.read_product_chunk(product, grid.product_georefs(product),
                                     dst, "auto")
    spot_vnir = np.unravel_index(np.nanargmax(values[0]), (30, 30))
    spot_swir = np.unravel_index(np.nanargmax(values[1]), (30, 30))
    assert spot_vnir == spot_swir == (10, 15)
    assert not np.isnan(values).any()


def test_fill_and_saturated_dn_are_masked(tmp_path):
    """DN 0 (fill) and 255 (saturated) become NaN."""
    path, _ = _small_l1t(tmp_path,
                         dn_patch={"2": [(0, 0, 0), (0, 1, 255)]})
    product = aster.open_product(str(path), bands=["2"])
    source = product.bands["2"]
    values = source.reflectance(source.raster.read(Window(0, 0, 3, 1)))
    assert np.isnan(values[0, :2]).all() and np.isfinite(values[0, 2])


def test_hdf_source_reads_boundless_and_pickles(l1t_path):
    """Outside the swath reads 0; a pickled source reads the same."""
    product = aster.open_product(str(l1t_path), bands=["5"])
    raster = product.bands["5"].raster
    window = Window(-2, 27, 5, 5)
    values = raster.read(window)
    assert values.shape == (5, 5) and values.dtype == np.uint8
    assert (values[:, :2] == 0).all() and (values[3:, :] == 0).all()
    assert values[0, 2] == _hdf_dn(l1t_path, "ImageData5", 27, 0)
    clone = pickle.loads(pickle.dumps(raster))
    np.testing.assert_array_equal(clone.read(window), values)


def test_tir_bands_give_radiance_when_asked(l1t_path):
    """include_tir adds bands 10-14 as (DN - 1) * UCC radiance."""
    product = aster.open_product(str(l1t_path), include_tir=True)
    assert list(product.bands)[-5:] == ["10", "11", "12", "13", "14"]
    dn = _hdf_dn(l1t_path, "ImageData13", 4, 4)
    assert _pixel(product, "13", 4, 4) == pytest.approx(
        (dn - 1) * 5.693e-3, rel=1e-5)


@pytest.mark.parametrize("value, name", [
    ("B01", "1"), ("b3n", "3N"), ("3", "3N"), ("Band3N", "3N"),
    ("ImageData4", "4"), (9, "9"), ("B10", "10"), ("14", "14"),
], ids=lambda v: str(v))
def test_band_names_are_accepted_liberally(value, name):
    """Aliases of a band normalise to one canonical name."""
    assert aster.band_name(value) == name


def test_unknown_band_name_stops(l1t_path):
    """Band 3B (backward view) is not offered; the message names the file."""
    with pytest.raises(ProductError, match=r"AST_L1T_cuprite\.hdf: bands: "
                                           r"'3B' is not an ASTER band"):
        aster.open_product(str(l1t_path), bands=["1", "3B"])


def test_unknown_reader_option_stops(l1t_path):
    """A misspelt option is named, with the options that exist."""
    with pytest.raises(ProductError, match=r"unknown ASTER reader option\(s\)"
                                           r" \['exclude_swir'\]"):
        aster.open_product(str(l1t_path), exclude_swir=True)


def test_dispatch_by_sensor_name(l1t_path):
    """lithomap.products.open_product('aster', ...) reaches this reader."""
    product = open_any("aster", str(l1t_path), ["3N", "B04"])
    assert product.sensor == "aster" and list(product.bands) == ["3N", "4"]
    assert product.scene_id.startswith("AST_L1T_00306182005184530")
    assert product.acquired == dt.datetime(2005, 6, 18, 18, 45, 30,
                                           tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def srf_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ast07")
    scene = fx.synth_scene(7, 24, place="mutawintji")
    return folder, scene, fx.write_07xt(str(folder), scene)


def test_07xt_reflectance_is_dn_times_0_001(srf_scene):
    """Surface reflectance = DN * 0.001 (DN read with pyhdf)."""
    folder, _, paths = srf_scene
    product = aster.open_product(str(folder))
    assert product.metadata["product"] == "AST_07XT"
    dn = _hdf_dn(paths[1], "Band8", 5, 6)
    assert _pixel(product, "8", 5, 6) == pytest.approx(dn * 0.001, rel=1e-6)
    assert len(product.metadata["files"]) == 2


def test_07xt_grid_is_fitted_to_the_geolocation_fields(srf_scene):
    """Without UTM corners, the 11 x 11 geocentric lat/lon give the grid."""
    _, scene, paths = srf_scene
    product = aster.open_product(paths[0])
    refs = grid.product_georefs(product)
    assert refs["1"].crs.to_epsg() == 32754
    assert refs["1"].transform.almost_equals(scene.transform("VNIR"),
                                             precision=1e-3)
    assert refs["4"].transform.almost_equals(
        Affine(30, 0, 620400, 0, -30, 6546000), precision=1e-3)


def test_07xt_in_one_file_reads_the_same(tmp_path, srf_scene):
    """Both swaths in one HDF file give the same bands and values."""
    _, scene, _ = srf_scene
    path, = fx.write_07xt(str(tmp_path), scene, single_file=True)
    product = aster.open_product(path, bands=["2", "6"])
    assert _pixel(product, "6", 1, 1) == pytest.approx(
        round(scene.reflectance["6"][1, 1] * 1000) / 1000, abs=1e-6)


def test_07xt_without_its_swir_file_stops(tmp_path, srf_scene):
    """If the SWIR file of the granule is missing, band 4 is named."""
    _, scene, _ = srf_scene
    vnir, swir = fx.write_07xt(str(tmp_path), scene)
    os.remove(swir)
    with pytest.raises(ProductError, match=r"band 4: no "
                                           r"SurfaceReflectanceSWIR swath"):
        aster.open_product(vnir)


@pytest.fixture(scope="module")
def l1t_exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    scene = fx.synth_scene(3, 24)
    fx.write_l1t(str(folder / "scene.hdf"), scene)
    fx.write_exports(str(folder / "tifs"), scene, "L1T")
    return folder, scene


def test_l1t_exports_read_like_the_hdf(l1t_exports):
    """Per-band ImageData GeoTIFFs + .met give the HDF's reflectance."""
    folder, _ = l1t_exports
    from_hdf = aster.open_product(str(folder / "scene.hdf"))
    from_tifs = aster.open_product(str(folder / "tifs"))
    assert from_tifs.scene_id.startswith("AST_L1T_00306182005184530")
    for band in ("1", "3N", "4", "9"):
        assert _pixel(from_tifs, band, 2, 3) == pytest.approx(
            _pixel(from_hdf, band, 2, 3), rel=1e-6)
        assert (from_tifs.bands[band].raster.open_georef().transform
                == from_hdf.bands[band].raster.open_georef().transform)


def test_l1t_exports_without_met_need_the_options(tmp_path, l1t_exports):
    """DN exports without metadata stop, naming the band and the option."""
    folder, _ = l1t_exports
    bare = tmp_path / "bare"
    shutil.copytree(folder / "tifs", bare)
    for met in bare.glob("*.met"):
        met.unlink()
    with pytest.raises(ProductError, match=r"band 1: no GAIN entry for '01'"
                                           r".*reader option gains"):
        aster.open_product(str(bare))
    product = aster.open_product(
        str(bare), bands=["1", "4"], gains={"1": "NOR", "B04": "NOR"},
        sun_elevation=60.0)
    with_met = aster.open_product(str(folder / "tifs"), bands=["1", "4"])
    assert _pixel(product, "4", 1, 1) == pytest.approx(
        _pixel(with_met, "4", 1, 1), rel=1e-6)


def test_exports_in_a_zip_are_read(tmp_path, l1t_exports):
    """A .zip of the band files and the .met reads through /vsizip/."""
    folder, _ = l1t_exports
    archive = tmp_path / "AST_L1T_export.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for member in (folder / "tifs").iterdir():
            handle.write(member, member.name)
    product = aster.open_product(str(archive), bands=["2"])
    assert product.bands["2"].raster.path.startswith("/vsizip/")
    assert np.isfinite(_pixel(product, "2", 0, 0))


def test_07xt_exports_are_matched_by_file_name(tmp_path):
    """SurfaceReflectanceSWIR_Band5.tif is band 5, scaled by 0.001."""
    scene = fx.synth_scene(4, 12)
    fx.write_exports(str(tmp_path), scene, "07XT")
    product = aster.open_product(str(tmp_path))
    assert product.metadata["product"] == "AST_07XT"
    expected = round(scene.reflectance["5"][2, 2] * 1000) * 0.001
    assert _pixel(product, "5", 2, 2) == pytest.approx(expected, abs=1e-6)


def test_export_missing_a_band_stops(tmp_path):
    """A band without its GeoTIFF is named in the error."""
    scene = fx.synth_scene(4, 12)
    fx.write_exports(str(tmp_path), scene, "07XT", bands=["1", "2", "3N"])
    with pytest.raises(ProductError, match=r"band 4, 5, 6, 7, 8, 9: no "
                                           r"GeoTIFF named for it"):
        aster.open_product(str(tmp_path))


def test_demo_scene_has_distinct_rock_units(tmp_path):
    """Units differ in SWIR; the same seed writes the same digital numbers."""
    path = tmp_path / "demo.hdf"
    scene = fx.make_l1t(str(path), seed=0, vnir_px=120)
    again = fx.synth_scene(0, 120)
    np.testing.assert_array_equal(fx.to_dn(again, "6"), scene.dn["6"])
    codes = [u for u in np.unique(scene.units) if (scene.units == u).sum()
             > 50]
    assert len(codes) >= 4
    means = np.array([[scene.reflectance[b][scene.units == u].mean()
                       for b in aster.SWIR] for u in codes])
    gaps = [np.linalg.norm(means[i] - means[j]) for i in range(len(codes))
            for j in range(i + 1, len(codes))]
    assert min(gaps) > 0.03


def test_threaded_chunk_reads_match_serial_reads(l1t_path):
    """Dask threads reading many chunks at once give the serial result."""
    import dask

    product = aster.open_product(str(l1t_path), bands=["1", "4", "9"])
    crs = product.bands["4"].raster.georef.crs
    aoi = grid.AOI((478800.0, 4160100.0, 479700.0, 4161000.0))
    region = grid.make_grid(crs, 30.0, aoi)
    stack = grid.lazy_stack([product], region, aoi, chunk_px=4)
    with dask.config.set(scheduler="synchronous"):
        serial = stack.compute()
    with dask.config.set(scheduler="threads", num_workers=4):
        threaded = stack.compute()
    np.testing.assert_array_equal(threaded, serial)
    assert np.isfinite(serial).all()
