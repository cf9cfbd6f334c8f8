"""Tests of lithomap.evaluate: references on the grid, matching, scores."""

import copy
import json
import logging
import math
import runpy
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from lithomap import evaluate as ev
from lithomap.products.base import Georef
from rasterio import features as rio_features
from sklearn import metrics

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BENCH_TIF = SHARED / "bench" / "wilcannia_sim" / "reference_units.tif"
BENCH_GPKG = SHARED / "bench" / "wilcannia_sim" / "reference_units.gpkg"
PAPER_TIF = SHARED / "data" / "paper_wilcannia" / "Wilcannia_RockUnits_30m.tif"
REFERENCES = {"bench": BENCH_TIF, "paper": PAPER_TIF}


def grid_of(path) -> Georef:
    with rasterio.open(path) as src:
        return Georef(src.crs, src.transform, src.width, src.height)


def grid_dict(grid: Georef) -> dict:
    return {"crs": grid.crs.to_string(),
            "transform": list(grid.transform)[:6],
            "width": grid.width, "height": grid.height}


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.nodata


def write_tif(path, array, grid: Georef | None, nodata=None, crs=True):
    profile = {"driver": "GTiff", "width": array.shape[1],
               "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "nodata": nodata}
    if grid is not None:
        profile["transform"] = grid.transform
        if crs:
            profile["crs"] = grid.crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return path


def flipped_map(units, nodata, fraction, seed):
    """A map made from `units`: codes permuted to clusters 1..k, then
    exactly round(fraction * valid) pixels moved to another cluster.

    Returns the map, {cluster: unit code} and the number of flips.
    """
    rng = np.random.default_rng(seed)
    codes = np.unique(units[units != nodata])
    k = len(codes)
    clusters = rng.permutation(k) + 1
    lut = np.zeros(256, np.uint8)
    lut[codes] = clusters
    out = lut[units]
    valid = np.flatnonzero(out)
    n_flip = round(fraction * valid.size)
    picked = rng.choice(valid, n_flip, replace=False)
    shift = rng.integers(1, k, n_flip)
    out.flat[picked] = (out.flat[picked].astype(np.int64) - 1 + shift) % k + 1
    truth = {int(c): int(u) for c, u in zip(clusters, codes)}
    return out, truth, n_flip


@pytest.fixture(scope="module", params=sorted(REFERENCES), ids=str)
def gridded(request, tmp_path_factory):
    """A real reference raster put on its own grid: (name, path, grid)."""
    source = REFERENCES[request.param]
    grid = grid_of(source)
    out = tmp_path_factory.mktemp(request.param) / "reference.tif"
    ev.rasterize_reference({"path": str(source)}, grid, out, window_px=700)
    return request.param, out, grid


@pytest.fixture(scope="module")
def bench_scored(tmp_path_factory):
    """The bench reference, a 2 %-flipped map of it, and its evaluation."""
    tmp = tmp_path_factory.mktemp("bench_scored")
    grid = grid_of(BENCH_TIF)
    reference = tmp / "reference.tif"
    ev.rasterize_reference({"path": str(BENCH_TIF)}, grid, reference)
    units, nodata = read(reference)
    clusters, _, _ = flipped_map(units, nodata, 0.02, seed=3)
    map_path = write_tif(tmp / "map.tif", clusters, grid, nodata=0)
    doc = ev.evaluate_map(map_path, reference, run={"sensor": "s2",
                                                    "method": "pca"})
    return {"doc": doc, "units": units, "clusters": clusters, "grid": grid,
            "map": map_path, "reference": reference, "tmp": tmp}


# --- references on the grid ---------------------------------------------

def test_raster_reference_keeps_codes_and_maps_nodata(gridded):
    """Resampled onto its own grid, a reference keeps every code; its
    nodata (15 or 255 by the file's tag) becomes 255."""
    name, path, _ = gridded
    source, source_nodata = read(REFERENCES[name])
    values, nodata = read(path)
    valid = source != source_nodata

    assert nodata == 255
    np.testing.assert_array_equal(values[valid], source[valid])
    assert (values[~valid] == 255).all()
    assert ev.reference_legend(path) == {}


def test_config_nodata_stands_in_for_a_missing_tag(tmp_path, caplog):
    """A raster without a nodata tag takes reference.nodata from config;
    without either, every value is a unit and a warning says so."""
    grid = grid_of(BENCH_TIF)
    units, _ = read(BENCH_TIF)
    units = units.copy()
    units[:40, :30] = 15
    source = write_tif(tmp_path / "untagged.tif", units, grid)

    with_cfg = ev.rasterize_reference(
        {"path": str(source), "nodata": 15}, grid, tmp_path / "a.tif")
    with caplog.at_level(logging.WARNING, logger="lithomap.evaluate"):
        without = ev.rasterize_reference({"path": str(source)}, grid,
                                         tmp_path / "b.tif")

    assert 15 not in with_cfg.unit_px
    assert (read(tmp_path / "a.tif")[0][:40, :30] == 255).all()
    assert without.unit_px[15] == 40 * 30
    assert "no nodata value" in caplog.text


def test_vector_reference_equals_a_direct_rasterisation(tmp_path):
    """Polygons burnt window by window give the raster one rasterio call
    gives, and the raster the polygons were drawn from."""
    grid = grid_of(BENCH_TIF)
    out = tmp_path / "reference.tif"
    summary = ev.rasterize_reference(
        {"path": str(BENCH_GPKG), "unit_column": "unit_code"}, grid, out,
        window_px=300)
    frame = gpd.read_file(BENCH_GPKG)
    direct = rio_features.rasterize(
        zip(frame.geometry, frame["unit_code"]),
        out_shape=(grid.height, grid.width), transform=grid.transform,
        fill=255, dtype="uint8")

    burnt, nodata = read(out)
    assert summary.kind == "vector" and nodata == 255
    np.testing.assert_array_equal(burnt, direct)
    np.testing.assert_array_equal(burnt, read(BENCH_TIF)[0])


def test_vector_reference_in_another_crs_is_reprojected(tmp_path):
    """Polygons in geographic coordinates land where the same polygons
    reprojected to the grid CRS by hand land."""
    grid = grid_of(BENCH_TIF)
    frame = gpd.read_file(BENCH_GPKG)
    geographic = tmp_path / "units_4326.gpkg"
    frame.to_crs("EPSG:4326").to_file(geographic)
    ev.rasterize_reference({"path": str(geographic),
                            "unit_column": "unit_code"}, grid,
                           tmp_path / "reference.tif", window_px=400)
    back = gpd.read_file(geographic).to_crs(grid.crs)
    direct = rio_features.rasterize(
        zip(back.geometry, back["unit_code"]),
        out_shape=(grid.height, grid.width), transform=grid.transform,
        fill=255, dtype="uint8")

    np.testing.assert_array_equal(read(tmp_path / "reference.tif")[0],
                                  direct)


@pytest.mark.parametrize("legend", [None, {7: "sand", 3: "quartzite"}],
                         ids=["numbered", "legend-codes"])
def test_unit_names_become_codes(tmp_path, legend):
    """Units given as names are numbered 1..n in sorted order, or take
    the codes of the legend when one is given; the legend is stored."""
    grid = grid_of(BENCH_TIF)
    frame = gpd.read_file(BENCH_GPKG)
    frame["lithology"] = np.where(frame["unit_code"] < 8, "sand",
                                  "quartzite")
    path = tmp_path / "names.gpkg"
    frame.to_file(path)
    cfg = {"path": str(path), "unit_column": "lithology", "legend": legend}
    summary = ev.rasterize_reference(cfg, grid, tmp_path / "reference.tif")

    expected = legend or {1: "quartzite", 2: "sand"}
    code_of = {name: code for code, name in expected.items()}
    units = read(BENCH_TIF)[0]
    burnt = read(tmp_path / "reference.tif")[0]
    assert summary.legend == expected
    assert ev.reference_legend(tmp_path / "reference.tif") == expected
    assert (burnt[units < 8] == code_of["sand"]).all()
    assert (burnt[units >= 8] == code_of["quartzite"]).all()


@pytest.mark.parametrize(
    "legend, expected",
    [({"1": "sand", 2: "clay"}, {1: "sand", 2: "clay"}),
     ("csv", {0: "plains", 13: "quartzite"})],
    ids=["mapping", "csv"])
def test_legend_from_config(tmp_path, legend, expected):
    """A legend is a mapping (codes as YAML gives them) or a CSV file."""
    if legend == "csv":
        legend = tmp_path / "legend.csv"
        legend.write_text("code,name\n0,plains\n13,quartzite\n")
    assert ev.read_legend(legend) == expected


# --- counting and matching ----------------------------------------------

def test_flipped_map_scores_exactly_the_flipped_fraction(gridded,
                                                          tmp_path):
    """A map made by permuting the reference's codes and moving 1 % of its
    pixels to other clusters scores OA = 1 - 1 % exactly under both
    matchings, which both recover the permutation."""
    _, reference, grid = gridded
    units, nodata = read(reference)
    clusters, truth, n_flip = flipped_map(units, nodata, 0.01, seed=11)
    map_path = write_tif(tmp_path / "map.tif", clusters, grid, nodata=0)

    doc = ev.evaluate_map(map_path, reference, window_px=512)

    n_valid = int((units != nodata).sum())
    assert doc["pixels"]["compared"] == n_valid
    assert doc["pixels"]["map_without_reference"] == 0
    assert doc["k"] == len(truth)
    for name in ("many_to_one", "one_to_one"):
        block = doc["matching"][name]
        assert block["mapping"] == {str(c): u for c, u in truth.items()}
        assert block["overall_accuracy"] == (n_valid - n_flip) / n_valid
        diagonal = np.trace(np.asarray(block["confusion"]["counts"])[:, :-1])
        assert diagonal == n_valid - n_flip


@pytest.mark.parametrize("window_px", [64, 333, 4096],
                         ids=["small", "ragged", "whole"])
def test_contingency_does_not_depend_on_windows(bench_scored, window_px):
    """Counting by windows of any size gives the table counted at once."""
    s = bench_scored
    cont = ev.contingency(s["map"], s["reference"], window_px=window_px)
    expected = metrics.cluster.contingency_matrix(s["units"].ravel(),
                                                  s["clusters"].ravel())

    np.testing.assert_array_equal(cont.table, expected)
    np.testing.assert_array_equal(cont.units, np.unique(s["units"]))


def test_pixel_counts_of_partial_overlap(tmp_path):
    """Pixels valid in only one of map and reference are counted apart
    and left out of the table."""
    grid = Georef(rasterio.crs.CRS.from_epsg(32754),
                  rasterio.Affine(30, 0, 600000, 0, -30, 6500000), 6, 4)
    units = np.array([[1, 1, 1, 2, 2, 255],
                      [1, 1, 1, 2, 2, 255],
                      [3, 3, 3, 2, 2, 255],
                      [3, 3, 3, 2, 2, 255]], np.uint8)
    clusters = np.array([[1, 1, 0, 2, 2, 2],
                         [1, 1, 0, 2, 2, 2],
                         [3, 3, 3, 2, 1, 0],
                         [3, 3, 3, 2, 1, 0]], np.uint8)
    reference = write_tif(tmp_path / "ref.tif", units, grid, nodata=255)
    map_path = write_tif(tmp_path / "map.tif", clusters, grid, nodata=0)

    cont = ev.contingency(map_path, reference, window_px=4)

    assert cont.pixels == {"grid": 24, "map": 20, "reference": 20,
                           "compared": 18, "map_without_reference": 2,
                           "reference_without_map": 2}
    np.testing.assert_array_equal(cont.table, [[4, 0, 0], [2, 6, 0],
                                               [0, 0, 6]])
    assert cont.unit_px == {1: 6, 2: 8, 3: 6}
    assert cont.cluster_px == {1: 6, 2: 8, 3: 6}


def test_more_clusters_than_units(tmp_path):
    """With k > units, one-to-one leaves the smallest cluster unmatched
    (its pixels count as errors); many-to-one gives it its majority unit.
    A cluster with no pixel on the reference (7) is matched to nothing.
    """
    cont = ev.Contingency(
        table=np.array([[50, 0, 10, 4],
                        [5, 40, 0, 0],
                        [0, 10, 30, 1]]),
        units=np.array([0, 4, 9]), clusters=np.array([1, 2, 3, 4]),
        pixels={}, unit_px={},
        cluster_px={1: 55, 2: 50, 3: 40, 4: 5, 7: 3})

    one = ev.match_one_to_one(cont)
    many = ev.match_many_to_one(cont)

    assert one.mapping == {1: 0, 2: 4, 3: 9, 4: None, 7: None}
    assert many.mapping == {1: 0, 2: 4, 3: 9, 4: 0, 7: None}
    np.testing.assert_array_equal(one.confusion, [[50, 0, 10, 4],
                                                  [5, 40, 0, 0],
                                                  [0, 10, 30, 1]])
    np.testing.assert_array_equal(many.confusion[:, 0], [54, 5, 1])
    assert ev.agreement_scores(one.confusion)["overall_accuracy"] == 120 / 150
    assert ev.agreement_scores(many.confusion)["overall_accuracy"] == 124 / 150


# --- scores ------------------------------------------------------------------

def test_kappa_and_variance_by_hand():
    """Kappa and its variance match a hand calculation on a 2 x 2 table.

    Table [[20, 5], [10, 15]], n = 50; row totals 25, 25; column totals
    30, 20.
    theta1 = 35/50 = 0.7
    theta2 = (25*30 + 25*20) / 50^2 = 1250/2500 = 0.5
    theta3 = (20*(25+30) + 15*(25+20)) / 2500 = 1775/2500 = 0.71
    theta4 = (20*(25+30)^2 + 5*(25+30)^2 + 10*(25+20)^2 + 15*(25+20)^2)
             / 50^3 = (60500 + 15125 + 20250 + 30375) / 125000 = 1.01
    kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    var = [0.7*0.3/0.25 + 2*0.3*(2*0.7*0.5 - 0.71)/0.125
           + 0.3^2*(1.01 - 4*0.25)/0.0625] / 50
        = (0.84 - 0.048 + 0.0144) / 50 = 0.016128
    """
    kappa, var = ev.kappa_with_variance([[20, 5], [10, 15]])

    assert kappa == pytest.approx(0.4, abs=1e-12)
    assert var == pytest.approx(0.016128, abs=1e-12)


def test_kappa_of_the_congalton_green_example_and_its_spread():
    """The textbook 4-class matrix (Congalton and Green) gives kappa 0.65;
    its variance agrees with the spread of kappa over multinomial
    resamples of the same matrix."""
    matrix = np.array([[65, 4, 22, 24], [6, 81, 5, 8], [0, 11, 85, 19],
                       [4, 7, 3, 90]])
    kappa, var = ev.kappa_with_variance(matrix)
    n = int(matrix.sum())
    draws = np.random.default_rng(5).multinomial(
        n, matrix.ravel() / n, size=4000).reshape(-1, 4, 4)
    observed = np.trace(draws, axis1=1, axis2=2) / n
    chance = (draws.sum(axis=2) * draws.sum(axis=1)).sum(axis=1) / n ** 2
    resampled = (observed - chance) / (1 - chance)

    assert round(kappa, 2) == 0.65
    assert var == pytest.approx(resampled.var(), rel=0.1)


def test_per_unit_accuracies_by_hand():
    """Producer's accuracy divides by the unit's reference pixels, user's
    by the pixels mapped as the unit; unmatched pixels count against the
    producer's accuracy only.

    Confusion [[8, 2 | 0], [1, 6 | 3]] (last column unmatched):
    unit A: producer's 8/10, user's 8/9, F1 2 (0.8)(8/9) / (0.8 + 8/9);
    unit B: producer's 6/10, user's 6/8; OA 14/20.
    """
    scores = ev.agreement_scores(np.array([[8, 2, 0], [1, 6, 3]]))
    per_unit = scores["per_unit"]

    assert per_unit["producers_accuracy"] == pytest.approx([0.8, 0.6])
    assert per_unit["users_accuracy"] == pytest.approx([8 / 9, 0.75])
    assert per_unit["f1"][0] == pytest.approx(
        2 * 0.8 * (8 / 9) / (0.8 + 8 / 9))
    assert per_unit["reference_px"] == [10, 10]
    assert per_unit["mapped_px"] == [9, 8]
    assert scores["overall_accuracy"] == pytest.approx(14 / 20)


def test_partition_scores_equal_scikit_learn_on_the_real_map(bench_scored):
    """ARI, NMI, AMI, homogeneity, completeness and V-measure computed
    from the contingency table equal scikit-learn's from the labels."""
    s = bench_scored
    truth, pred = s["units"].ravel(), s["clusters"].ravel()
    h, c, v = metrics.homogeneity_completeness_v_measure(truth, pred)
    expected = {"ari": metrics.adjusted_rand_score(truth, pred),
                "nmi": metrics.normalized_mutual_info_score(truth, pred),
                "ami": metrics.adjusted_mutual_info_score(truth, pred),
                "homogeneity": h, "completeness": c, "v_measure": v}

    assert s["doc"]["partition"] == pytest.approx(expected, rel=1e-9,
                                                  abs=1e-12)


@pytest.mark.parametrize(
    "n_units, n_clusters, n",
    [(6, 12, 3000), (12, 4, 3000), (5, 5, 40), (1, 3, 200), (4, 1, 200),
     (1, 1, 50)],
    ids=["k>units", "k<units", "tiny", "one-unit", "one-cluster", "one-one"])
def test_partition_scores_equal_scikit_learn_on_random_labels(
        n_units, n_clusters, n):
    """The scores agree with scikit-learn on weakly related partitions,
    including the degenerate ones."""
    rng = np.random.default_rng(n_units * 100 + n_clusters)
    truth = rng.integers(0, n_units, n)
    pred = (truth + rng.integers(0, 2, n)) % n_clusters
    table = metrics.cluster.contingency_matrix(truth, pred)
    h, c, v = metrics.homogeneity_completeness_v_measure(truth, pred)
    expected = {"ari": metrics.adjusted_rand_score(truth, pred),
                "nmi": metrics.normalized_mutual_info_score(truth, pred),
                "ami": metrics.adjusted_mutual_info_score(truth, pred),
                "homogeneity": h, "completeness": c, "v_measure": v}

    assert ev.partition_scores(table) == pytest.approx(expected, rel=1e-9,
                                                       abs=1e-12)


def test_internal_scores_equal_scikit_learn():
    """Silhouette (on the seeded subsample), CH and DB are scikit-learn's;
    rows with NaN are left out."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(m, 1, (400, 3)) for m in (0, 6, 12)])
    labels = np.repeat([1, 2, 3], 400)
    with_nan = np.vstack([x, np.full((5, 3), np.nan)]).astype(np.float32)
    labels_nan = np.concatenate([labels, np.ones(5, int)])

    scores = ev.internal_scores(with_nan, labels_nan, seed=4,
                                silhouette_n=500)
    x64 = x.astype(np.float32).astype(np.float64)

    assert scores["n_px"] == 1200 and scores["silhouette_n"] == 500
    assert scores["silhouette"] == pytest.approx(metrics.silhouette_score(
        x64, labels, sample_size=500, random_state=4))
    assert scores["calinski_harabasz"] == pytest.approx(
        metrics.calinski_harabasz_score(x64, labels))
    assert scores["davies_bouldin"] == pytest.approx(
        metrics.davies_bouldin_score(x64, labels))


def test_internal_scores_of_one_cluster_are_nan(caplog):
    """A single cluster has no internal scores: NaN, and a warning."""
    with caplog.at_level(logging.WARNING, logger="lithomap.evaluate"):
        scores = ev.internal_scores(np.ones((10, 2)), np.ones(10))
    assert math.isnan(scores["silhouette"])
    assert "at least two clusters" in caplog.text


# --- points ------------------------------------------------------------------

def points_on(grid, units, tmp_path, kind):
    """40 points with their pixel's unit, 10 with a wrong one, 3 outside
    the grid; written as CSV (codes) or GeoPackage in EPSG:4326 (names).
    """
    rng = np.random.default_rng(8)
    rows = rng.integers(0, grid.height, 50)
    cols = rng.integers(0, grid.width, 50)
    codes = units[rows, cols].astype(int)
    codes[40:] = np.where(codes[40:] == 0, 1, 0)
    xs, ys = grid.transform @ (cols + 0.5, rows + 0.5)
    left, bottom, right, top = grid.bounds
    xs = np.concatenate([xs, [left - 100, right + 5, left + 10]])
    ys = np.concatenate([ys, [top - 10, bottom + 10, top + 1000]])
    codes = np.concatenate([codes, [1, 1, 1]])
    if kind == "csv":
        path = tmp_path / "points.csv"
        pd.DataFrame({"E": xs, "N": ys, "unit": codes}).to_csv(path)
        return {"path": str(path), "unit_column": "unit", "x": "E",
                "y": "N", "crs": "EPSG:32754"}
    frame = gpd.GeoDataFrame(
        {"unit": [f"unit {c}" for c in codes]},
        geometry=gpd.points_from_xy(xs, ys), crs=grid.crs)
    path = tmp_path / "points.gpkg"
    frame.to_crs("EPSG:4326").to_file(path)
    return {"path": str(path), "unit_column": "unit"}


@pytest.mark.parametrize("kind", ["csv", "gpkg"],
                         ids=["csv-codes", "gpkg-4326-names"])
def test_accuracy_at_points(bench_scored, tmp_path, kind, caplog):
    """On an unflipped map, 40 of 50 points agree; the 3 points outside
    the grid are counted, reported and warned about, not dropped
    silently."""
    s = bench_scored
    units = s["units"]
    clusters, _, _ = flipped_map(units, 255, 0.0, seed=3)
    map_path = write_tif(tmp_path / "map.tif", clusters, s["grid"],
                         nodata=0)
    points = points_on(s["grid"], units, tmp_path, kind)
    legend = {int(c): f"unit {c}" for c in np.unique(units)}

    with caplog.at_level(logging.WARNING, logger="lithomap.evaluate"):
        doc = ev.evaluate_map(map_path, s["reference"], points=points,
                              legend=legend)

    counts = doc["points"]["counts"]
    assert counts["total"] == 53 and counts["outside_grid"] == 3
    assert counts["scored"] == 50
    for name in ("many_to_one", "one_to_one"):
        assert doc["points"][name]["overall_accuracy"] == 40 / 50
    assert "3 of 53 point(s) fall outside the region grid" in caplog.text


# --- outputs -----------------------------------------------------------------

def test_outputs_are_written(bench_scored):
    """accuracy.json is strict JSON with every score and the mapping;
    confusion.csv holds both matchings; the heatmap is a PNG."""
    s = bench_scored
    out = s["tmp"] / "out"
    ev.write_accuracy(s["doc"], out / "accuracy.json",
                      out / "confusion.csv", out / "confusion.png")

    def no_nan(value):
        raise AssertionError(f"non-JSON number {value}")

    doc = json.loads((out / "accuracy.json").read_text(),
                     parse_constant=no_nan)
    table = pd.read_csv(out / "confusion.csv")
    many = doc["matching"]["many_to_one"]

    assert set(doc["matching"]) == {"many_to_one", "one_to_one"}
    assert "Hungarian" in doc["matching"]["one_to_one"]["method"]
    assert {"kappa", "kappa_variance", "kappa_ci95", "per_unit",
            "mapping", "mapping_names"} <= set(many)
    assert doc["pixels"]["compared"] == s["units"].size
    assert len(table) == 2 * 10
    assert list(table.columns[-1:]) == ["unmatched"]
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_ranks_by_accuracy_then_ari(bench_scored, tmp_path):
    """Maps are ranked by many-to-one OA, ties broken by ARI; the table
    is written as CSV and Markdown."""
    base = bench_scored["doc"]
    variants = {"a": (0.70, 0.30), "b": (0.80, 0.20), "c": (0.70, 0.50)}
    paths = []
    for method, (oa, ari) in variants.items():
        doc = copy.deepcopy(base)
        doc["run"] = {"region": "wilcannia", "sensor": "s2",
                      "method": method}
        doc["matching"]["many_to_one"]["overall_accuracy"] = oa
        doc["partition"]["ari"] = ari
        path = tmp_path / method / "accuracy.json"
        path.parent.mkdir()
        path.write_text(json.dumps(doc))
        paths.append(path)

    table = ev.summarise(paths, tmp_path / "summary.csv",
                         tmp_path / "summary.md")

    assert table["method"].tolist() == ["b", "c", "a"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert pd.read_csv(tmp_path / "summary.csv")["method"].tolist() == \
        ["b", "c", "a"]
    assert (tmp_path / "summary.md").read_text().startswith("| rank |")


# --- rule scripts --------------------------------------------------------

class _Named(dict):
    """Stand-in for Snakemake's named lists: items by key or attribute."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def fake_snakemake(tmp_path, **parts):
    base = {"input": _Named(), "output": _Named(), "params": _Named(),
            "wildcards": _Named(), "log": [str(tmp_path / "rule.log")],
            "rule": "test", "threads": 1}
    base.update({k: _Named(v) if isinstance(v, dict) else v
                 for k, v in parts.items()})
    return _Named(base)


@pytest.fixture
def root_logging():
    """Put back the root logger's handlers a rule script replaces."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_rule_scripts_rasterise_then_score(tmp_path, root_logging):
    """The two rule scripts run on what Snakemake hands them and log to
    the rule's log file."""
    grid = grid_of(BENCH_TIF)
    units, _ = read(BENCH_TIF)
    clusters, _, _ = flipped_map(units, 255, 0.05, seed=1)
    map_path = write_tif(tmp_path / "map.tif", clusters, grid, nodata=0)
    reference_cfg = {"path": str(BENCH_GPKG), "unit_column": "unit_code"}
    scripts = REPO / "workflow" / "scripts"

    stack_json = tmp_path / "stack.json"
    stack_json.write_text(json.dumps({"grid": grid_dict(grid)}))
    runpy.run_path(str(scripts / "rasterize_reference.py"), init_globals={
        "snakemake": fake_snakemake(
            tmp_path, input={"stack": str(stack_json)},
            output={0: str(tmp_path / "reference.tif")},
            params={"reference": reference_cfg})})
    runpy.run_path(str(scripts / "evaluate.py"), init_globals={
        "snakemake": fake_snakemake(
            tmp_path,
            input={"map": str(map_path),
                   "reference": str(tmp_path / "reference.tif")},
            output={"accuracy": str(tmp_path / "accuracy.json"),
                    "confusion": str(tmp_path / "confusion.csv"),
                    "figure": str(tmp_path / "confusion.png")},
            params={"reference": reference_cfg},
            wildcards={"region": "wilcannia", "sensor": "landsat",
                       "method": "pca"})})

    doc = json.loads((tmp_path / "accuracy.json").read_text())
    assert doc["run"]["method"] == "pca"
    assert doc["matching"]["one_to_one"]["overall_accuracy"] == \
        pytest.approx(0.95, abs=1e-6)
    assert "OA many-to-one" in (tmp_path / "rule.log").read_text()


# --- bad input ---------------------------------------------------------------

def test_reference_outside_the_region(tmp_path):
    """A reference that does not reach the region stops with an error."""
    grid = grid_of(BENCH_TIF)
    far = Georef(grid.crs, grid.transform @ rasterio.Affine.translation(
        -40000, 0), grid.width, grid.height)
    for cfg in ({"path": str(BENCH_TIF)},
                {"path": str(BENCH_GPKG), "unit_column": "unit_code"}):
        with pytest.raises(ev.ReferenceMapError,
                           match="does not overlap the region grid"):
            ev.rasterize_reference(cfg, far, tmp_path / "ref.tif")


def test_missing_unit_column_lists_the_columns(tmp_path):
    """A unit column the file lacks is named, with the columns it has."""
    with pytest.raises(ev.ReferenceMapError,
                       match=r"'lithology' is not a column .*: unit_code"):
        ev.rasterize_reference(
            {"path": str(BENCH_GPKG), "unit_column": "lithology"},
            grid_of(BENCH_TIF), tmp_path / "ref.tif")


@pytest.mark.parametrize("kind", ["raster", "vector"])
def test_reference_without_crs(tmp_path, kind):
    """A reference in no known CRS cannot be placed: a clear error."""
    grid = grid_of(BENCH_TIF)
    if kind == "raster":
        path = tmp_path / "nocrs.tif"
        write_tif(path, read(BENCH_TIF)[0], grid, nodata=255, crs=False)
        cfg = {"path": str(path)}
    else:
        path = tmp_path / "nocrs.gpkg"
        frame = gpd.read_file(BENCH_GPKG)
        bare = gpd.GeoDataFrame(frame[["unit_code"]],
                                geometry=list(frame.geometry))
        with pytest.warns(UserWarning, match="'crs' was not provided"):
            bare.to_file(path)
        cfg = {"path": str(path), "unit_column": "unit_code"}
    with pytest.raises(ev.ReferenceMapError, match="has no CRS"):
        ev.rasterize_reference(cfg, grid, tmp_path / "ref.tif")


@pytest.mark.parametrize(
    "cfg, message",
    [({}, r"reference\.path is required"),
     ({"path": "no/such/file.gpkg"}, "does not exist"),
     ({"path": str(BENCH_GPKG), "unit_column": "unit_code",
       "legend": {"x": "sand"}}, "legend codes must be integers")],
    ids=["no-path", "missing-file", "bad-legend"])
def test_bad_reference_config(tmp_path, cfg, message):
    """Config mistakes name the config key and what was wrong."""
    with pytest.raises(ev.ReferenceMapError, match=message):
        ev.rasterize_reference(cfg, grid_of(BENCH_TIF), tmp_path / "r.tif")


def test_fractional_codes_are_refused(tmp_path):
    """A continuous raster is not a reference map."""
    grid = grid_of(BENCH_TIF)
    values = read(BENCH_TIF)[0].astype(np.float32) + 0.5
    path = write_tif(tmp_path / "float.tif", values, grid, nodata=-1)
    with pytest.raises(ev.ReferenceMapError, match="not an integer unit"):
        ev.rasterize_reference({"path": str(path)}, grid, tmp_path / "r.tif")


def test_names_missing_from_the_legend(tmp_path):
    """Unit names the legend lacks are listed."""
    frame = gpd.read_file(BENCH_GPKG)
    frame["lithology"] = "sand"
    path = tmp_path / "names.gpkg"
    frame.to_file(path)
    with pytest.raises(ev.ReferenceMapError,
                       match="sand are not in reference.legend"):
        ev.rasterize_reference(
            {"path": str(path), "unit_column": "lithology",
             "legend": {1: "clay"}}, grid_of(BENCH_TIF), tmp_path / "r.tif")


def test_map_on_another_grid(bench_scored, tmp_path):
    """A map and a reference on different grids are not compared."""
    s = bench_scored
    shifted = Georef(s["grid"].crs, s["grid"].transform
                     @ rasterio.Affine.translation(1, 0), s["grid"].width,
                     s["grid"].height)
    map_path = write_tif(tmp_path / "map.tif", s["clusters"], shifted,
                         nodata=0)
    with pytest.raises(ev.ReferenceMapError, match="is not on the grid"):
        ev.evaluate_map(map_path, s["reference"])


def test_points_csv_needs_a_crs(bench_scored, tmp_path):
    """Points in a CSV carry no CRS, so config must give one."""
    s = bench_scored
    points = points_on(s["grid"], s["units"], tmp_path, "csv")
    del points["crs"]
    with pytest.raises(ev.ReferenceMapError,
                       match=r"reference\.points\.crs is required"):
        ev.evaluate_map(s["map"], s["reference"], points=points)
