"""The workflow end to end through the real `snakemake` command, on a small
AOI of the real Sentinel-2 scene, and its refusals of bad input."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import yaml
import zarr

from conftest import BENCH, REPO, S2_COG

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def tiny_config(**region_changes):
    region = {
        "grid": {"crs": "EPSG:32629", "res_m": 200,
                 "aoi": {"bbox": [240000, 2720000, 280000, 2760000]}},
        "scenes": [{"sensor": "sentinel2", "path": str(S2_COG)}],
        "methods": ["pca", "ae"],
    }
    region.update(region_changes)
    return {"run": ["tiny"], "regions": {"tiny": region},
            "methods": {"pca": {"reducer": "pca", "variance": 0.99},
                        "ae": {"reducer": "autoencoder", "hidden": [16],
                               "code_size": 3, "epochs": 4,
                               "train_size": 5000}},
            "settings": {"sample_size": 20000, "k": 6, "chunk_px": 64}}


def run(workdir, config, *targets):
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        SNAKEMAKE + ["-s", str(REPO / "Snakefile"), "--directory",
                     str(workdir), "--configfile", str(path), "--cores", "2",
                     *targets],
        capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    proc = run(workdir, tiny_config())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_map_is_a_categorical_geotiff_on_the_grid(tiny_run):
    """uint8, nodata 0, colour table, the region's CRS and transform."""
    path = tiny_run / "results/tiny/sentinel2/pca/map.tif"
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint8"
        assert src.nodata == 0
        assert src.crs.to_epsg() == 32629
        assert tuple(src.transform)[:6] == (200, 0, 240000, 0, -200, 2760000)
        assert (src.width, src.height) == (200, 200)
        assert src.profile["tiled"]
        assert len(src.colormap(1)) >= 7
        labels = src.read(1)
    counts = np.bincount(labels.ravel(), minlength=7)
    assert labels.max() == 6
    # Every cluster holds a real share of the rock area.
    assert (counts[1:] > 0.01 * labels.size).all()


def test_map_follows_the_scene(tiny_run):
    """Clusters explain the scene's spectra: the spectral shape (each
    pixel's bands over their mean, as the default brightness normalisation
    sees them) varies far less within clusters than over the whole area.
    A random map would leave all of it within clusters."""
    with rasterio.open(tiny_run / "results/tiny/sentinel2/pca/map.tif") as m:
        labels = m.read(1)
    layers = []
    for band in ("B02", "B03", "B04", "B08", "B11", "B12"):
        with rasterio.open(S2_COG / f"{band}.tif") as src:
            window = rasterio.windows.from_bounds(
                240000, 2720000, 280000, 2760000, src.transform)
            layers.append(src.read(1, window=window, out_shape=(200, 200))
                          .astype(float))
    spectra = np.stack(layers)
    usable = (labels > 0) & (spectra > 0).all(axis=0)
    shape = spectra / spectra.mean(axis=0)

    def spread(mask):
        return sum(layer[mask].var() for layer in shape)

    within = sum(spread(usable & (labels == c)) * (usable & (labels == c))
                 .sum() for c in range(1, labels.max() + 1)) / usable.sum()
    assert within < 0.6 * spread(usable)


def test_summary_reports_pixels_k_and_times(tiny_run):
    summary = json.loads((tiny_run / "results/tiny/summary.json").read_text())
    entry = summary["maps"][0]
    assert [m["method"] for m in summary["maps"]] == ["pca", "ae"]
    assert entry["k"] == 6
    assert entry["n_pixels"] == 200 * 200
    assert 0.9 * 40000 < entry["n_usable"] <= 40000
    assert entry["n_sample"] == 20000
    assert set(entry["seconds"]) == {"stack", "sample", "reduce", "cluster",
                                     "map"}


@pytest.mark.parametrize("method", ["pca", "ae"])
def test_same_config_gives_same_map(tiny_run, tmp_path_factory, method):
    """A second run from scratch reproduces every map exactly, the
    autoencoder's included."""
    again = tmp_path_factory.getbasetemp() / "again"
    if not again.exists():
        again.mkdir()
        proc = run(again, tiny_config())
        assert proc.returncode == 0, proc.stderr[-3000:]
    name = f"results/tiny/sentinel2/{method}/map.tif"
    with rasterio.open(tiny_run / name) as a, \
            rasterio.open(again / name) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_changing_k_reruns_only_what_depends_on_k(tiny_run):
    """Snakemake reruns jobs whose params change: a new k must not rebuild
    the stack or retrain the reducers."""
    config = tiny_config()
    config["settings"]["k"] = 5
    config["regions"]["tiny"]["description"] = "edited"
    path = tiny_run / "config_k5.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        SNAKEMAKE + ["-s", str(REPO / "Snakefile"), "--directory",
                     str(tiny_run), "--configfile", str(path), "--cores",
                     "2", "-n", "--quiet", "rules"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = proc.stdout + proc.stderr
    assert "cluster" in planned and "map" in planned
    for rule in ("stack", "sample", "reduce"):
        assert f"\n{rule} " not in planned, planned


def test_reordering_config_keys_reruns_nothing(tiny_run):
    """The same config with every mapping's keys in reverse order is the
    same config: no job is planned."""
    def reverse(value):
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in sorted(value, reverse=True)}
        return value

    path = tiny_run / "config_reversed.yaml"
    path.write_text(yaml.safe_dump(reverse(tiny_config()), sort_keys=False))
    assert path.read_text().startswith("settings:")
    proc = subprocess.run(
        SNAKEMAKE + ["-s", str(REPO / "Snakefile"), "--directory",
                     str(tiny_run), "--configfile", str(path), "--cores",
                     "2", "-n"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr, \
        (proc.stdout + proc.stderr)[-3000:]


def test_autoencoder_run_saves_model_history_and_loss(tiny_run):
    model = tiny_run / "results/tiny/sentinel2/ae/model"
    assert (model / "autoencoder.keras").stat().st_size > 0
    history = json.loads((model / "autoencoder_history.json").read_text())
    assert history
    assert (model / "autoencoder_loss.png").stat().st_size > 0
    assert (tiny_run / "results/tiny/report.html").stat().st_size > 0


def test_local_cluster_gives_the_same_map(tiny_run, tmp_path):
    """Through a dask.distributed LocalCluster of two worker processes, the
    map is identical to the one made with the default threads."""
    config = tiny_config(methods=["pca"])
    config["dask"] = {"scheduler": "local_cluster", "n_workers": 2}
    proc = run(tmp_path, config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "logs/tiny/sentinel2/pca/map.log").read_text()
    assert "Dask local cluster: 2 worker(s)" in log
    with rasterio.open(tiny_run / "results/tiny/sentinel2/pca/map.tif") as a, \
            rasterio.open(tmp_path / "results/tiny/sentinel2/pca/map.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


@pytest.mark.parametrize("changes, message", [
    ({"grid": {"crs": "EPSG:32629", "res_m": 200,
               "aoi": {"bbox": [700000, 2720000, 720000, 2740000]}}},
     "does not intersect any scene"),
    ({"grid": {"crs": "EPSG:32629", "res_m": 200,
               "aoi": {"bbox": [266600, 2799200, 267400, 2800000]}}},
     "every pixel of the sentinel2 stack is masked"),
    ({"scenes": [{"sensor": "sentinel2", "path": "../nowhere/S2"}]},
     "no such file or folder"),
    ({"bands": {"sentinel2": ["B02", "B03", "B04", "B13"]}}, "no band B13"),
], ids=["aoi-outside", "aoi-all-cloud", "missing-scene", "missing-band"])
def test_bad_input_stops_cleanly(tmp_path, changes, message):
    """The run fails with a message saying what is wrong, and leaves no
    stack that looks complete."""
    proc = run(tmp_path, tiny_config(**changes))
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "results/tiny/sentinel2/stack.zarr").exists()
    assert not list((tmp_path / "results").rglob("*.part")) \
        if (tmp_path / "results").exists() else True


def test_unknown_config_key_names_it(tmp_path):
    config = tiny_config()
    config["settings"]["sampel_size"] = 10
    proc = run(tmp_path, config)
    assert proc.returncode != 0
    assert "config key settings: unknown key(s) sampel_size" in proc.stderr


def test_fusion_maps_both_sensors_together(tmp_path):
    """With fusion, a small AOI of the simulated bench maps Sentinel-2 and
    Landsat together: the fused stack holds both sensors' bands, keeps a
    pixel only where both have it, and is mapped and scored like a sensor
    of its own."""
    sim = BENCH / "wilcannia_sim"
    region = {
        "grid": {"crs": "EPSG:32754", "res_m": 90,
                 "aoi": {"bbox": [625000, 6550000, 634000, 6559000]}},
        "scenes": [{"sensor": "sentinel2",
                    "path": str(sim / "S2B_54JUM_20230815_0_L2A")},
                   {"sensor": "landsat", "path": str(
                       sim / "LC08_L2SP_096082_20230815_20230815_02_T1.tar")}],
        "methods": ["pca"], "fusion": True,
        "reference": {"path": str(sim / "reference_units.gpkg"),
                      "unit_column": "unit_code"},
    }
    config = {"run": ["sim"], "regions": {"sim": region},
              "methods": {"pca": {"reducer": "pca"}},
              "settings": {"sample_size": 5000, "k": 6, "chunk_px": 64}}
    proc = run(tmp_path, config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results/sim"
    fused = json.loads((out / "fused/stack.json").read_text())
    s2 = json.loads((out / "sentinel2/stack.json").read_text())
    landsat = json.loads((out / "landsat/stack.json").read_text())
    assert fused["bands"] == ([f"sentinel2:{b}" for b in s2["bands"]]
                              + [f"landsat:{b}" for b in landsat["bands"]])
    both = np.ones((100, 100), bool)
    for sensor in ("sentinel2", "landsat"):
        stack = zarr.open_array(str(out / sensor / "stack.zarr"), mode="r")
        both &= ~np.isnan(stack[:]).any(axis=0)
    assert fused["n_usable"] == both.sum() > 0.9 * both.size
    with rasterio.open(out / "fused/pca/map.tif") as src:
        labels = src.read(1)
    assert ((labels > 0) == both).all()
    assert len(np.unique(labels[both])) == 6
    accuracy = json.loads((out / "fused/pca/accuracy.json").read_text())
    assert accuracy["pixels"]["compared"] == both.sum()
    assert 0 < accuracy["matching"]["many_to_one"]["overall_accuracy"] <= 1
    summary = json.loads((out / "summary.json").read_text())
    assert [(m["sensor"], m["method"]) for m in summary["maps"]] == [
        ("sentinel2", "pca"), ("landsat", "pca"), ("fused", "pca")]
    html = (out / "report.html").read_text()
    assert "fused / pca" in html
    assert "true colour (sentinel2:B04, sentinel2:B03, sentinel2:B02)" in html
