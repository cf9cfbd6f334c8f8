"""Map files (COG, colour table, QGIS style, attribute table), progress
logging, and the HTML report, on small maps written into tmp_path."""

import base64
import io
import json
import logging
import math
import re
import shutil
import xml.etree.ElementTree as ET

import dask.array as da
import numpy as np
import pytest
import rasterio
from affine import Affine
from lithomap import export, progress
from lithomap.export import ExportError
from lithomap.products.base import Georef
from lithomap.report import ReportError, build_report, map_quicklook
from PIL import Image
from rasterio.crs import CRS

K = 5
PRESENT = {0, 1, 4, 5}          # classes 2 and 3 are never drawn
RES_M = 30.0
GRID = Georef(CRS.from_epsg(32611), Affine(RES_M, 0, 478800, 0, -RES_M,
                                           4161000), 600, 700)


def checkered_map() -> np.ndarray:
    """700 x 600 map larger than one 512 px tile: blocks of classes 1, 4
    and 5, a nodata block, and pixel-level checkerboards of 1/4 and 1/5
    whose averages (2.5, 3) are codes absent from the map."""
    rng = np.random.default_rng(7)
    blocks = rng.choice([1, 4, 5], size=(7, 6))
    labels = np.repeat(np.repeat(blocks, 100, 0), 100, 1).astype(np.uint8)
    labels[:100, :100] = 0
    rows, cols = np.indices((200, 200))
    labels[300:500, 0:200] = np.where((rows + cols) % 2, 1, 4)
    labels[300:500, 400:600] = np.where((rows + cols) % 2, 1, 5)
    return labels


@pytest.fixture(scope="module")
def labels():
    return checkered_map()


@pytest.fixture(scope="module")
def written(tmp_path_factory, labels):
    """(path, classes) of the map written from Dask chunks that do not
    line up with the file's 512 px tiles."""
    path = str(tmp_path_factory.mktemp("map") / "map.tif")
    lazy = da.from_array(labels, chunks=(250, 256))
    classes = export.write_map(lazy, GRID, path, K, progress_every_s=0)
    return path, classes


def read_rat(path):
    """(field names, usages, rows as lists of strings) of a PAM RAT."""
    table = ET.parse(f"{path}.aux.xml").find(
        "PAMRasterBand/GDALRasterAttributeTable")
    names = [f.findtext("Name") for f in table.iter("FieldDefn")]
    usages = [int(f.findtext("Usage")) for f in table.iter("FieldDefn")]
    rows = [[v.text or "" for v in row.iter("F")]
            for row in table.iter("Row")]
    return table, names, usages, rows


# --- the GeoTIFF -------------------------------------------------------------

def test_map_is_a_tiled_cog_on_the_grid(written, labels):
    """The map is a deflated, 512 px tiled COG on the grid, holding the
    labels exactly."""
    path, _ = written
    with rasterio.open(path) as src:
        profile = src.profile
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert (profile["driver"], profile["dtype"]) == ("GTiff", "uint8")
        assert profile["nodata"] == 0
        assert profile["tiled"] and profile["blockxsize"] == 512
        assert profile["compress"] == "deflate"
        assert src.crs == GRID.crs and src.transform == GRID.transform
        np.testing.assert_array_equal(src.read(1), labels)


def test_overviews_hold_only_class_codes_of_the_map(written):
    """Overviews exist and hold only codes present at full resolution:
    averaging the checkerboards would have made 2 or 3."""
    path, _ = written
    with rasterio.open(path) as src:
        factors = src.overviews(1)
    assert factors, "a 600 x 700 map needs at least one overview"
    for level, factor in enumerate(factors):
        with rasterio.open(path, overview_level=level) as ovr:
            values = ovr.read(1)
        assert values.shape == (math.ceil(700 / factor),
                                math.ceil(600 / factor))
        assert set(np.unique(values)) <= PRESENT, f"overview x{factor}"


def test_colour_table_band_description_and_transparent_nodata(written):
    """Classes 1..k have distinct opaque colours; nodata 0 has alpha 0."""
    path, _ = written
    with rasterio.open(path) as src:
        colours = src.colormap(1)
        assert src.colorinterp[0] == rasterio.enums.ColorInterp.palette
        assert src.descriptions == ("cluster",)
    classes = [colours[c] for c in range(1, K + 1)]
    assert len(set(classes)) == K
    assert all(c[3] == 255 for c in classes)
    assert colours[0][3] == 0


@pytest.mark.parametrize("k", [2, 8, 20, 64, 255], ids=lambda k: f"k{k}")
def test_palette_colours_are_distinct(k):
    """Every k up to 255 gets k different opaque colours."""
    colours = export.palette(k)
    rgb = {colours[c][:3] for c in range(1, k + 1)}
    assert len(rgb) == k
    assert colours[0] == (0, 0, 0, 0)


@pytest.mark.parametrize("k", [0, 256, 2.5], ids=["zero", "256", "float"])
def test_write_map_rejects_k_outside_uint8(tmp_path, k):
    lazy = da.zeros((700, 600), dtype=np.uint8, chunks=256)
    with pytest.raises(ExportError, match="k must be an integer in 1..255"):
        export.write_map(lazy, GRID, str(tmp_path / "m.tif"), k)


def test_write_map_rejects_labels_off_the_grid(tmp_path):
    lazy = da.zeros((70, 60), dtype=np.uint8, chunks=32)
    with pytest.raises(ExportError, match=r"labels have shape \(70, 60\)"):
        export.write_map(lazy, GRID, str(tmp_path / "m.tif"), 3)


# --- the QGIS style ----------------------------------------------------------

def test_qml_is_a_paletted_style_with_the_map_colours(written):
    """The .qml parses, uses the paletted renderer on band 1 with nearest
    resampling, and lists classes 1..k in the colour table's colours."""
    path, _ = written
    root = ET.parse(export.sidecar_paths(path)["qml"]).getroot()
    assert root.tag == "qgis"
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    resampling = root.find("pipe/provider/resampling")
    assert resampling.get("zoomedOutResamplingMethod") == "nearestNeighbour"
    entries = renderer.findall("colorPalette/paletteEntry")
    with rasterio.open(path) as src:
        colours = src.colormap(1)
    assert [int(e.get("value")) for e in entries] == list(range(1, K + 1))
    for e in entries:
        value = int(e.get("value"))
        assert e.get("color") == "#{:02x}{:02x}{:02x}".format(
            *colours[value][:3])
        assert e.get("label") == f"cluster {value}"
        assert e.get("alpha") == "255"


def test_matched_units_name_the_classes(written, tmp_path):
    """Once clusters are matched, labels carry the unit and the cluster
    (a unit known by its code only is "unit 12"); an unmatched cluster
    keeps its plain label."""
    path = str(tmp_path / "map.tif")
    shutil.copy(written[0], path)
    units = {1: "Granite", 3: "12", 4: "Basalt", 5: "unmatched"}
    export.write_sidecars(path, units)
    root = ET.parse(export.sidecar_paths(path)["qml"]).getroot()
    labels = {int(e.get("value")): e.get("label")
              for e in root.iter("paletteEntry")}
    assert labels == {1: "Granite (cluster 1)", 2: "cluster 2",
                      3: "unit 12 (cluster 3)", 4: "Basalt (cluster 4)",
                      5: "cluster 5"}
    _, names, _, rows = read_rat(path)
    unit = names.index("unit")
    assert [r[unit] for r in rows] == ["Granite", "", "12", "Basalt", ""]


def test_units_from_an_accuracy_document():
    doc = {"matching": {"many_to_one": {"mapping_names": {
        "1": "Granite", "2": "Granite", "3": "unmatched", "4": None}}}}
    assert export.units_from_accuracy(doc) == {1: "Granite", 2: "Granite"}
    with pytest.raises(ExportError, match="no matching 'one_to_one'"):
        export.units_from_accuracy(doc, "one_to_one")


# --- the attribute table -----------------------------------------------------

def test_rat_counts_areas_and_colours(written, labels):
    """The PAM attribute table counts what np.bincount counts, area is
    count x pixel area, colours are the colour table's."""
    path, classes = written
    table, names, usages, rows = read_rat(path)
    assert table.get("tableType") == "thematic"
    assert names == [f[0] for f in export.RAT_FIELDS]
    assert usages[:2] == [5, 1]          # GFU_MinMax, GFU_PixelCount
    counts = np.bincount(labels.ravel(), minlength=K + 1)[1:K + 1]
    col = {n: i for i, n in enumerate(names)}
    assert [int(r[col["value"]]) for r in rows] == list(range(1, K + 1))
    assert [int(r[col["count"]]) for r in rows] == counts.tolist()
    assert [c.count for c in classes] == counts.tolist()
    areas = [float(r[col["area_km2"]]) for r in rows]
    np.testing.assert_allclose(areas, counts * RES_M * RES_M / 1e6)
    with rasterio.open(path) as src:
        colours = src.colormap(1)
    for r in rows:
        rgba = tuple(int(r[col[c]]) for c in ("red", "green", "blue",
                                              "alpha"))
        assert rgba == colours[int(r[col["value"]])]


def test_class_csv_matches_the_counts(written, labels):
    path, _ = written
    rows = export.read_class_csv(export.sidecar_paths(path)["csv"])
    counts = np.bincount(labels.ravel(), minlength=K + 1)
    assert [r["count"] for r in rows] == counts[1:].tolist()
    assert math.isclose(sum(r["percent"] for r in rows), 100, abs_tol=0.01)
    assert rows[1]["count"] == 0 and rows[1]["label"] == "cluster 2"


@pytest.mark.parametrize("rows_per_read", [1, 37, 512, 10_000],
                         ids=lambda n: f"rows{n}")
def test_count_classes_by_windows(written, labels, rows_per_read):
    """Counting in strips of any height gives np.bincount of the map."""
    counts = export.count_classes(written[0], rows_per_read=rows_per_read)
    np.testing.assert_array_equal(
        counts, np.bincount(labels.ravel(), minlength=K + 1))


def test_area_is_nan_in_degrees(tmp_path, caplog):
    """A map in degrees has no area in km²: NaN and a warning."""
    grid = Georef(CRS.from_epsg(4326), Affine(0.001, 0, 10, 0, -0.001, 50),
                  64, 48)
    path = str(tmp_path / "deg.tif")
    lazy = da.ones((48, 64), dtype=np.uint8, chunks=32)
    with caplog.at_level(logging.WARNING, logger="lithomap.export"):
        classes = export.write_map(lazy, grid, path, 2)
    assert math.isnan(classes[0].area_km2) and classes[0].count == 48 * 64
    assert "no linear unit" in caplog.text


def test_rewritten_map_gets_a_fresh_table(written, tmp_path):
    """Writing another map at the same path replaces its sidecars."""
    path = str(tmp_path / "map.tif")
    shutil.copy(written[0], path)
    export.write_sidecars(path)
    lazy = da.full((700, 600), 2, dtype=np.uint8, chunks=256)
    export.write_map(lazy, GRID, path, 3)
    _, _, _, rows = read_rat(path)
    assert [r[:2] for r in rows] == [["1", "0"], ["2", "420000"],
                                     ["3", "0"]]


# --- progress ----------------------------------------------------------------

class _Sink:
    def __setitem__(self, key, value):
        pass


def test_progress_logs_chunks_and_rate(caplog):
    """Every stored chunk is counted; lines give done/total and Mpx/s."""
    lazy = da.ones((100, 120), chunks=(50, 40))
    logger = logging.getLogger("lithomap.test_progress")
    with (caplog.at_level(logging.INFO, logger=logger.name),
          progress.for_array(logger, lazy, every_s=0, what="map") as cb):
        da.store(lazy, _Sink(), lock=False)
    assert cb.total == 6 and cb.done == 6
    assert "map: 6/6 chunks (100 %)" in caplog.text
    assert re.search(r"done, map: 6/6 chunks \(100 %\), [\d.]+ Mpx/s",
                     caplog.text)


def test_progress_counts_the_graph_when_not_told(caplog):
    """Without a total, the store tasks of the graph are counted; with a
    long interval only the final line appears."""
    lazy = da.ones((30, 30), chunks=10)
    logger = logging.getLogger("lithomap.test_progress")
    with (caplog.at_level(logging.INFO, logger=logger.name),
          progress.log_progress(logger, every_s=3600) as cb):
        da.store(lazy, _Sink(), lock=False)
    assert cb.total == 9 and cb.lines == 1
    assert "done, chunks: 9/9 chunks" in caplog.text
    assert "Mpx/s" not in caplog.text


# --- the report --------------------------------------------------------------

def _png_bytes(size=(40, 30), colour=(30, 120, 200)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


ACCURACY = {
    "pixels": {"grid": 420000, "map": 330000, "compared": 305000},
    "internal": {"n_px": 305000, "silhouette": 0.31,
                 "calinski_harabasz": 5139.5, "davies_bouldin": 0.95},
    "units": [{"code": 1, "name": "Granite"}, {"code": 2, "name": "Basalt"}],
    "partition": {"ari": 0.41, "nmi": 0.52, "ami": 0.51},
    "matching": {
        "many_to_one": {"overall_accuracy": 0.8125, "kappa": 0.61,
                        "kappa_ci95": [0.6, 0.62], "method": "majority",
                        "mapping_names": {"1": "Granite", "4": "Basalt",
                                          "5": "Basalt"}},
        "one_to_one": {"overall_accuracy": 0.7031, "kappa": 0.5,
                       "kappa_ci95": [0.49, 0.51], "method": "Hungarian",
                       "mapping_names": {"1": "Granite", "4": "Basalt",
                                         "5": "unmatched"}},
    },
}


@pytest.fixture(scope="module")
def results(tmp_path_factory, written):
    """A fake results folder of region "demo": sensor aster with a scored
    autoencoder run holding every optional figure, and a bare PCA run."""
    root = tmp_path_factory.mktemp("results")
    sensor = root / "demo" / "aster"
    stack = {"sensor": "aster", "bands": ["1", "2", "3N"],
             "scenes": [{"scene_id": "AST_L1T_0030618", "path": "x.hdf",
                         "acquired": "2005-06-18T18:40:00+00:00"}],
             "grid": {"crs": GRID.crs.to_wkt(), "epsg": 32611,
                      "transform": list(GRID.transform)[:6],
                      "width": 600, "height": 700},
             "n_pixels": 420000, "n_usable": 410000, "seconds": 2.5}
    rng = np.random.default_rng(1)
    cube = rng.random((3, 700, 600), dtype=np.float32)
    cube[:, :100, :100] = np.nan
    sensor.mkdir(parents=True)
    da.to_zarr(da.from_array(cube, chunks=(3, 256, 256)),
               str(sensor / "stack.zarr"))
    files = {"stack.json": stack,
             "sample.json": {"n_sample": 100000, "seconds": 0.5}}
    for method, k in (("sae", K), ("pca", K)):
        run = sensor / method
        (run / "model").mkdir(parents=True)
        shutil.copy(written[0], run / "map.tif")
        files[f"{method}/reduce.json"] = {"reducer": method,
                                         "n_features": 3, "seconds": 40.0}
        files[f"{method}/cluster.json"] = {"k": k, "seconds": 3.0}
        files[f"{method}/map.json"] = {"seconds": 6.0}
    export.write_sidecars(str(sensor / "sae" / "map.tif"),
                          export.units_from_accuracy(ACCURACY))
    export.write_sidecars(str(sensor / "pca" / "map.tif"))
    files["sae/accuracy.json"] = ACCURACY
    for name, doc in files.items():
        (sensor / name).write_text(json.dumps(doc))
    for name in ("sae/k_selection.png", "sae/confusion.png",
                 "sae/model/sae_loss.png"):
        (sensor / name).write_bytes(_png_bytes())
    (sensor / "pca" / "cluster.json").unlink()
    return root


@pytest.fixture(scope="module")
def report(results):
    out = results / "demo" / "report.html"
    facts = build_report("demo", [("aster", "sae"), ("aster", "pca")],
                         str(out), results_dir=str(results),
                         description="GENERATED TEST DATA", quicklook_px=300)
    return out.read_text(encoding="utf-8"), facts


def test_report_is_one_self_contained_file(report, results):
    """Every image is a data: URI; nothing is fetched from elsewhere."""
    html, _ = report
    assert sorted(p.name for p in (results / "demo").iterdir()) == [
        "aster", "report.html"]
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) >= 7
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(href|src)="(https?:|//|file:)', html)
    assert "url(http" not in html and "<link" not in html
    assert "<script" not in html
    for uri in sources:
        Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_report_has_every_section(report):
    """Scenes, grid, masks, each run's map, legend, curves, accuracy and
    times, and a summary naming the best run."""
    html, facts = report
    for text in ("Summary", "Scenes, grid and masks", "AST_L1T_0030618",
                 "EPSG:32611", "30.0 x 30.0 m", "410,000", "97.6",
                 "aster / sae", "aster / pca", "Choice of k",
                 "Autoencoder loss", "Granite (cluster 1)", "0.812",
                 "0.703", "Time per stage", "GENERATED TEST DATA",
                 "Scored on 305,000 pixels", "Calinski-Harabasz", "5139.500",
                 "Closest to the reference map: aster / sae",
                 "false colour (3N, 2, 1)"):
        assert text in html, text
    assert facts["runs"] == ["aster / sae", "aster / pca"]


def test_report_says_what_is_missing(report):
    """The PCA run lacks cluster.json and scores: noted, not fatal."""
    html, facts = report
    assert facts["notes"] == ["no cluster.json"]
    assert "Missing: no cluster.json." in html
    assert "Not scored: no <code>accuracy.json</code>" in html


def test_map_quicklook_is_decimated_with_class_colours(written):
    """The quicklook is at most max_px on a side, and shows only the
    colour table's colours (nearest, no blending) and clear nodata."""
    png = map_quicklook(written[0], max_px=100)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    assert image.shape == (100, 86, 4)
    with rasterio.open(written[0]) as src:
        colours = src.colormap(1)
    allowed = {colours[c] for c in PRESENT - {0}} | {(0, 0, 0, 0)}
    seen = set(map(tuple, image.reshape(-1, 4)))
    assert seen <= allowed and len(seen) >= 3
    assert image[:10, :10, 3].max() == 0


def test_report_needs_a_run(tmp_path):
    with pytest.raises(ReportError, match="no \\(sensor, method\\) run"):
        build_report("demo", [], str(tmp_path / "r.html"))
