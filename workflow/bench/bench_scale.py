"""Scale benchmark: full-size Sentinel-2 tiles through the real workflow.

Builds a full-size Sentinel-2 L2A product (per-band COGs and a STAC item)
from the real, 10x-downsampled Western Sahara scene in ../shared/data, by
bilinear upsampling: 10 m bands at 10980 x 10980, 20 m bands and SCL at
5490 x 5490, as in a real tile. Then runs `snakemake` on it for each grid
size and reducer and reports, per stage: wall time, pixels per second and
peak resident memory of the whole process tree (Snakemake's own benchmark
record of each job, and this script's sampling of the whole run).

With ``--compare``, it also runs the published study's approach and
lithomap side by side on a size where the study's approach fits in memory:
the whole scene in float64, scikit-learn KMeans fitted on every pixel, and
a majority filter of ``scipy.ndimage.generic_filter`` calling
``scipy.stats.mode``.

Usage (from the repository root)::

    python workflow/bench/bench_scale.py --workdir /tmp/lithomap-bench \\
        --sizes 5490 10980 --methods pca --out results/bench/scale.json
    python workflow/bench/bench_scale.py --compare 1098 --out ...

Figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import rasterio
import yaml
from affine import Affine
from rasterio.enums import Resampling

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO.parent / "shared/data/sentinel2/S2A_29RKH_20200219_0_L2A"
BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11",
         "B12"]
TEN_M = {"B02", "B03", "B04", "B08"}
STAGES = ["stack", "sample", "reduce", "cluster", "map"]


# --- the full-size product --------------------------------------------------

def make_product(folder: Path, tile_px: int = 10980) -> Path:
    """Write the upsampled product once; later calls reuse it."""
    folder.mkdir(parents=True, exist_ok=True)
    item_path = folder / "S2A_29RKH_FULL_L2A.json"
    if item_path.exists():
        return folder
    assets = {}
    for band in BANDS + ["SCL"]:
        size = tile_px if band in TEN_M else tile_px // 2
        res = 109800 / size
        _upsample(SOURCE / f"{band}.tif", folder / f"{band}.tif", size,
                  Resampling.nearest if band == "SCL"
                  else Resampling.bilinear)
        assets[band] = {"href": f"./{band}.tif",
                        "raster:bands": [{"nodata": 0, "scale": 1e-4,
                                          "offset": 0.0,
                                          "spatial_resolution": res}]}
        print(f"  {band}: {size} x {size} px", flush=True)
    item = {"type": "Feature", "stac_version": "1.0.0",
            "id": "S2A_29RKH_FULL_L2A",
            "properties": {"datetime": "2020-02-19T11:34:25Z",
                           "s2:processing_baseline": "02.14"},
            "assets": assets}
    item_path.write_text(json.dumps(item, indent=1))
    return folder


def _upsample(src_path: Path, dst_path: Path, size: int, method) -> None:
    with rasterio.open(src_path) as src:
        data = src.read(1, out_shape=(size, size), resampling=method)
        scale = src.width / size
        profile = src.profile | dict(
            width=size, height=size,
            transform=src.transform @ Affine.scale(scale), tiled=True, blockxsize=512, blockysize=512,
            compress="deflate", predictor=2, driver="GTiff")
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data, 1)


# --- running the workflow and watching it -----------------------------------

class TreeMemory:
    """Samples the summed RSS of a process and all its children."""

    def __init__(self, pid: int, every_s: float = 0.2):
        self.pid, self.every_s, self.peak = pid, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root] + root.children(recursive=True)
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            time.sleep(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_workflow(workdir: Path, product: Path, res_m: float, methods,
                 method_cfg: dict, cores: int, chunk_px: int) -> dict:
    """Run snakemake on one grid size; return its measurements."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "run": ["bench"],
        "regions": {"bench": {
            "grid": {"crs": "EPSG:32629", "res_m": res_m,
                     "aoi": {"bbox": [199980, 2690220, 309780, 2800020]}},
            "scenes": [{"sensor": "sentinel2", "path": str(product)}],
            "bands": {"sentinel2": BANDS},
            "methods": list(methods)}},
        "methods": method_cfg,
        "settings": {"chunk_px": chunk_px},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile",
           str(workdir / "config.yaml"), "--cores", str(cores), "-q",
           "--forceall"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    with TreeMemory(proc.pid) as memory:
        output, _ = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{output[-4000:]}")
    return {"wall_s": round(wall, 1),
            "peak_rss_tree_mb": round(memory.peak / 2**20),
            "jobs": _job_records(workdir / "results/bench")}


def _job_records(results: Path) -> dict:
    """Seconds and peak RSS of each job, from Snakemake's benchmark files
    and the stage summaries."""
    jobs = {}
    for tsv in sorted((results / "benchmarks").glob("*.tsv")):
        with open(tsv) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        jobs[tsv.stem] = {"job_s": float(row["s"]),
                          "max_rss_mb": float(row["max_rss"])}
    summary = json.loads((results / "summary.json").read_text())
    for entry in summary["maps"]:
        jobs[f"{entry['method']}_stages_s"] = entry["seconds"]
        jobs["n_pixels"] = entry["n_pixels"]
    return jobs


# --- where the map stage spends its time ------------------------------------

def map_breakdown(workdir: Path, method: str) -> dict:
    """Seconds per chunk of read, encode, assign, filter, measured on one
    full chunk of the written stack, and scaled to the whole grid."""
    sys.path.insert(0, str(REPO / "workflow"))
    from lithomap import cluster, enrich, smooth
    from lithomap.reduce import FeatureModel
    from lithomap.stack import open_stack

    base = workdir / "results/bench/sentinel2"
    stack, grid, attrs = open_stack(str(base / "stack.zarr"))
    settings = yaml.safe_load((REPO / "config.yaml").read_text())["settings"]
    stack = enrich.apply(stack, attrs["bands"], attrs["sensor"], settings)
    model = FeatureModel.load(str(base / method / "model"))
    clusters = json.loads((base / method / "kmeans.json").read_text())["model"]
    t = {}
    start = time.perf_counter()
    block = stack.blocks[:, 1, 1].compute(scheduler="sync")
    t["read_and_normalise"] = time.perf_counter() - start
    pixels = block.reshape(block.shape[0], -1).T
    usable = ~np.isnan(pixels).any(axis=1)
    start = time.perf_counter()
    features = model.transform(pixels[usable])
    t["encode"] = time.perf_counter() - start
    start = time.perf_counter()
    labels = np.zeros(len(pixels), np.uint8)
    labels[usable] = cluster.predict(features, clusters)
    t["assign"] = time.perf_counter() - start
    start = time.perf_counter()
    smooth.majority(labels.reshape(block.shape[1:]), 7,
                    cluster.n_clusters(clusters))
    t["filter"] = time.perf_counter() - start
    chunks = stack.numblocks[1] * stack.numblocks[2]
    px = block.shape[1] * block.shape[2]
    return {"chunk_px": px, "chunks": chunks,
            "per_chunk_s": {k: round(v, 3) for k, v in t.items()},
            "whole_grid_cpu_s": {k: round(v * chunks, 1)
                                 for k, v in t.items()}}


# --- the study's approach, side by side ---------------------------------------

STUDY = r'''
import sys, time, json, resource
import numpy as np, rasterio
from rasterio.enums import Resampling
from scipy import ndimage, stats
from sklearn.cluster import KMeans
src, size, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bands = sys.argv[4].split(",")
t = {}
start = time.perf_counter()
layers = []
for b in bands:
    with rasterio.open(f"{src}/{b}.tif") as f:
        layers.append(f.read(1, out_shape=(size, size),
                             resampling=Resampling.bilinear).astype(np.float64))
cube = np.stack(layers) / 10000.0
t["read"] = time.perf_counter() - start
start = time.perf_counter()
x = cube.reshape(len(bands), -1).T
km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(x)
labels = km.labels_.reshape(size, size) + 1
t["kmeans_all_pixels"] = time.perf_counter() - start
start = time.perf_counter()
mode = lambda v: stats.mode(v, keepdims=False).mode
smoothed = ndimage.generic_filter(labels, mode, size=7)
t["generic_filter_mode"] = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": t, "total_s": sum(t.values()),
                  "peak_rss_mb": peak}))
'''


def compare(workdir: Path, size: int, cores: int) -> dict:
    """The study's approach against lithomap's PCA chain on `size`^2 px."""
    res_m = 109800 / size
    proc = subprocess.run([sys.executable, "-c", STUDY, str(SOURCE),
                           str(size), "8", ",".join(BANDS)],
                          capture_output=True, text=True, check=True)
    study = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = run_workflow(workdir / f"compare_{size}", SOURCE, res_m, ["pca"],
                        {"pca": {"reducer": "pca"}}, cores, 1024)
    ours_s = sum(ours["jobs"]["pca_stages_s"].values())
    return {"size_px": size, "study": study, "lithomap": ours,
            "ratio_time": round(study["total_s"] / ours_s, 1),
            "ratio_peak_memory": round(study["peak_rss_mb"]
                                       / ours["peak_rss_tree_mb"], 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path("/tmp/lithomap-bench"))
    parser.add_argument("--sizes", type=int, nargs="*", default=[],
                        help="grid sizes in px, e.g. 5490 10980")
    parser.add_argument("--methods", nargs="+", default=["pca"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--chunk-px", type=int, default=1024)
    parser.add_argument("--compare", type=int, default=None,
                        help="also compare with the study's approach at "
                        "this size (px), e.g. 1098")
    parser.add_argument("--out", type=Path,
                        default=Path("results/bench/scale.json"))
    args = parser.parse_args(argv)

    with open(REPO / "config.yaml") as f:
        method_cfg = yaml.safe_load(f)["methods"]
    report = {"machine": {"cores": os.cpu_count(),
                          "memory_gb": round(psutil.virtual_memory().total
                                             / 2**30, 1)},
              "runs": []}
    if args.sizes:
        print("building the full-size product ...", flush=True)
        product = make_product(args.workdir / "product")
    for size in args.sizes:
        for method in args.methods:
            print(f"running {method} on {size} x {size} ...", flush=True)
            workdir = args.workdir / f"run_{size}_{method}"
            run = run_workflow(workdir, product, 109800 / size, [method],
                               {method: method_cfg[method]}, args.cores,
                               args.chunk_px)
            run.update(size_px=size, method=method,
                       mpx_per_s=round(size * size / 1e6 / run["wall_s"], 2),
                       breakdown=map_breakdown(workdir, method))
            report["runs"].append(run)
            print(json.dumps(run, indent=1), flush=True)
    if args.compare:
        print(f"comparing with the study's approach at {args.compare} px",
              flush=True)
        report["compare"] = compare(args.workdir, args.compare, args.cores)
        print(json.dumps(report["compare"], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
