"""Mapping-quality experiments on a region with a known-truth reference.

Not a test: run it by hand on stacks the workflow has already built, e.g.
the simulated Wilcannia region (``snakemake --config
'run=[wilcannia_sim]'``):

    python workflow/bench/experiments.py \\
        --stacks-dir results/wilcannia_sim --out results/bench/experiments

Each variant (a set of levers: scaling, brightness normalisation, indices,
spatial context, reducer, clusterer, k and how it is chosen, majority
window) is run on every sensor's ``stack.zarr`` and seed with the same
functions the workflow uses (`lithomap.enrich`, `lithomap.sample`,
`lithomap.reduce`, `lithomap.cluster`, `lithomap.choose_k`,
`lithomap.smooth`), all in memory: the stacks are small. Every setting is
fitted or chosen without the reference; the reference only scores the
map, with `lithomap.evaluate` (contingency, many-to-one matching,
partition scores) over every pixel valid in both map and reference.

Writes into ``--out``: ``runs.csv`` (one row per variant, sensor and
seed: OA many-to-one, ARI, NMI, k, internal scores, seconds), appended
as runs finish; ``summary.csv`` (per variant and sensor: worst, median
and best OA and ARI over seeds, mean ARI between the seeds' maps); and
``summary.png``. ``--quick`` fits on a 100,000-pixel sample with one
seed; the full run uses the workflow's default sample (1,000,000) and
five seeds.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import lithomap  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lithomap import choose_k, cluster, enrich, evaluate, smooth
from lithomap.config import FUSED
from lithomap.reduce import REDUCERS, Scaler
from lithomap.sample import draw_sample
from lithomap.stack import open_stack

log = logging.getLogger("lithomap.bench.experiments")

BASE = {"normalise": "none", "normalise_groups": "all", "indices": False,
        "context_px": 0, "context_mode": "append", "scaling": "standard",
        "reducer": "pca", "reducer_params": {"variance": 0.99},
        "clusterer": "kmeans", "k": 8, "k_rule": "elbow",
        "k_range": [4, 20], "majority_window_px": 7, "fusion": False}
"""The workflow's settings before this work: PCA 99 %, k-means k = 8."""

SWEEP_N = 20_000
"""Pixels of the encoded sample a k sweep is fitted on."""

SHAPE = {"normalise": "mean", "normalise_groups": "resolution"}
"""Brightness normalisation per native-resolution group."""

DEFAULT = {**BASE, **SHAPE, "clusterer": "gmm", "k": "auto",
           "k_rule": "bic", "k_range": [4, 20]}
"""The proposed default configuration."""


def variants() -> list[dict]:
    """Every variant, each the settings that differ from `BASE`, a name
    and the lever it belongs to."""
    v = [("baseline", "baseline: PCA 99 % + k-means k=8", {}),
         ("baseline", "raw bands + k-means k=10",
          {"reducer": "none", "k": 10})]
    for scaling in ("robust", "minmax"):
        v.append(("scaling", f"scaling {scaling}", {"scaling": scaling}))
    for how in ("mean", "l2", "log_ratio"):
        v.append(("illumination", f"normalise {how} (all bands)",
                  {"normalise": how}))
    v += [("illumination", "normalise mean per resolution group", SHAPE),
          ("indices", "indices only added (no normalisation)",
           {"indices": True}),
          ("indices", "normalised + indices", {**SHAPE, "indices": True}),
          ("context", "normalised, local mean 3x3 only",
           {**SHAPE, "context_px": 1, "context_mode": "replace"}),
          ("clustering", "normalised + GMM k=8",
           {**SHAPE, "clusterer": "gmm", "k": 8}),
          ("choice of k", "normalised + k-means, k by elbow",
           {**SHAPE, "k": "auto", "k_rule": "elbow"}),
          ("choice of k", "DEFAULT: normalised + GMM, k by lowest BIC",
           DEFAULT),
          ("choice of k", "DEFAULT with k by the knee of BIC",
           {**DEFAULT, "k_rule": "bic_knee"}),
          ("majority", "DEFAULT without majority filter",
           {**DEFAULT, "majority_window_px": 1}),
          ("majority", "DEFAULT, majority 11x11",
           {**DEFAULT, "majority_window_px": 11}),
          ("context", "DEFAULT + local mean 3x3 appended",
           {**DEFAULT, "context_px": 1}),
          ("indices", "DEFAULT + indices", {**DEFAULT, "indices": True}),
          ("reduction", "DEFAULT on scaled layers, no PCA",
           {**DEFAULT, "reducer": "none"}),
          ("fusion", "DEFAULT, Landsat + Sentinel-2 fused",
           {**DEFAULT, "fusion": True})]
    if "autoencoder" in REDUCERS or _autoencoder_class() is not None:
        ae = {"reducer": "autoencoder",
              "reducer_params": {"code_size": 5, "epochs": 20,
                                 "train_size": 50_000}}
        v += [("autoencoder", "DEFAULT with AE (code 5) for PCA",
               {**DEFAULT, **ae})]
    return [{**BASE, **levers, "name": name, "lever": lever}
            for lever, name, levers in v]


def _autoencoder_class():
    """The autoencoder reducer, registered or not yet."""
    if "autoencoder" in REDUCERS:
        return REDUCERS["autoencoder"]
    try:
        from lithomap.reduce.autoencoder import AutoencoderReducer
    except ImportError:
        return None
    return AutoencoderReducer


# --- one run -------------------------------------------------------------

class Scene:
    """A sensor's stack, enriched per variant, and the reference."""

    def __init__(self, stacks_dir: Path, sensor: str, reference: Path):
        self.sensor = sensor
        path = stacks_dir / sensor / "stack.zarr"
        self.stack, self.grid, self.attrs = open_stack(str(path))
        self.bands = self.attrs["bands"]
        self.reference = reference
        self._cache: dict = {}

    def layers(self, variant: dict):
        """Dask array of the enriched stack for `variant`'s settings."""
        key = tuple(sorted((k, str(variant[k])) for k in enrich.DEFAULTS))
        if key not in self._cache:
            out = enrich.apply(self.stack, self.bands, self.sensor, variant)
            self._cache = {key: out.persist()}
        return self._cache[key]


def fused_layers(scenes: list[Scene], variant: dict):
    """Enriched layers of the region's sensors fused on one grid, as the
    workflow's `fusion: true` makes them."""
    import dask.array as da

    stack = da.concatenate([s.stack for s in scenes], axis=0)
    bands = [f"{s.sensor}:{b}" for s in scenes for b in s.bands]
    return enrich.apply(stack, bands, FUSED, variant).persist()


def run_one(layers, scene: Scene, variant: dict, seed: int,
            sample_size: int, out: Path) -> tuple[dict, np.ndarray]:
    """Map with `variant` and `seed`; score it. Returns (row, map)."""
    start = time.perf_counter()
    settings = {**variant, "seed": seed}
    sample, _ = draw_sample(layers, sample_size, seed)
    scaler = Scaler(variant["scaling"]).fit(sample)
    reducer = _fit_reducer(variant, scaler.transform(sample), seed)
    features = _encode(reducer, scaler, sample)
    k, choice = _choose_k(features, settings)
    model = cluster.fit(features, k, settings)
    labels = _map(layers, scaler, reducer, model,
                  variant["majority_window_px"])
    row = {"variant": variant["name"], "lever": variant["lever"],
           "sensor": FUSED if variant["fusion"] else scene.sensor,
           "seed": seed, "k": k, "k_choice": choice,
           "n_features": features.shape[1], "n_sample": len(sample)}
    row.update(_internal(features, model, seed))
    row.update(score_map(labels, scene, out))
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row, labels


def _fit_reducer(variant, scaled, seed):
    kind = variant["reducer"]
    if kind == "none":
        return None
    cls = _autoencoder_class() if kind == "autoencoder" else REDUCERS[kind]
    return cls(**variant["reducer_params"]).fit(scaled, seed)


def _encode(reducer, scaler, x):
    scaled = scaler.transform(x)
    return scaled if reducer is None else reducer.transform(scaled)


def _choose_k(features, s) -> tuple[int, str]:
    if s["k"] != "auto":
        return int(s["k"]), "fixed"
    if s["k_rule"] in ("bic", "bic_knee"):
        table = cluster.sweep_bic(
            features, s["k_range"], s["seed"], sweep_n=SWEEP_N,
            covariance=s.get("gmm_covariance", "full"))
        rule = "min" if s["k_rule"] == "bic" else "knee"
        return cluster.pick_k_bic(table, rule), s["k_rule"]
    k, table = choose_k.choose_k(features, s["k_range"], s["k_rule"],
                                 s["seed"], sweep_n=SWEEP_N, n_init=2)
    return int(k), table.attrs["rule_applied"]


def _map(layers, scaler, reducer, model, window_px) -> np.ndarray:
    """Smoothed class map (y, x), uint8, 0 = unusable."""
    block = layers.compute()
    nb, h, w = block.shape
    pixels = block.reshape(nb, -1).T
    usable = ~np.isnan(pixels).any(axis=1)
    labels = np.zeros(h * w, np.uint8)
    labels[usable] = cluster.predict(
        _encode(reducer, scaler, pixels[usable]), model)
    return smooth.majority(labels.reshape(h, w), window_px,
                           cluster.n_clusters(model))


def _internal(features, model, seed) -> dict:
    """Scores a user without a reference can compute on the sample."""
    x = cluster.subsample(features, 20_000, seed)
    labels = cluster.predict(x, model)
    scores = evaluate.internal_scores(x, labels, seed, 5_000)
    out = {name: round(float(scores[name]), 4) for name in
           ("silhouette", "calinski_harabasz", "davies_bouldin")}
    out["mean_log_likelihood"] = np.nan
    if model["kind"] == "gmm":
        out["mean_log_likelihood"] = round(float(np.mean(
            _logsumexp(cluster.gmm_log_density(x, model)))), 4)
    return out


def _logsumexp(a):
    top = a.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]


def score_map(labels: np.ndarray, scene: Scene, out: Path) -> dict:
    """OA (many-to-one), ARI and NMI of a map, by `lithomap.evaluate`."""
    import rasterio

    path = out / f"_map_{os.getpid()}.tif"
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 1,
               "width": scene.grid.width, "height": scene.grid.height,
               "crs": scene.grid.crs, "transform": scene.grid.transform,
               "nodata": 0}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels, 1)
    try:
        cont = evaluate.contingency(path, scene.reference)
    finally:
        path.unlink()
    matching = evaluate.match_many_to_one(cont)
    agreement = evaluate.agreement_scores(matching.confusion)
    partition = evaluate.partition_scores(cont.table)
    return {"oa": round(agreement["overall_accuracy"], 4),
            "ari": round(partition["ari"], 4),
            "nmi": round(partition["nmi"], 4),
            "n_compared": cont.pixels["compared"]}


def map_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """ARI between two maps over pixels mapped in both (a stability score
    that needs no reference)."""
    both = (a > 0) & (b > 0)
    table = np.zeros((256, 256), np.int64)
    np.add.at(table, (a[both], b[both]), 1)
    return evaluate.partition_scores(table)["ari"]


# --- the whole experiment ------------------------------------------------

def run(stacks_dir: Path, out: Path, sensors: list[str], seeds: list[int],
        sample_size: int, only: str | None) -> list[dict]:
    """Every variant x sensor x seed; rows of ``runs.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    reference = stacks_dir / "reference.tif"
    scenes = [Scene(stacks_dir, s, reference) for s in sensors]
    rows, maps = [], {}
    chosen = [v for v in variants() if only is None or only in v["name"]]
    for variant in chosen:
        targets = [None] if variant["fusion"] else scenes
        if variant["fusion"] and len(scenes) < 2:
            continue
        for scene, seed in itertools.product(targets, seeds):
            layers = fused_layers(scenes, variant) if scene is None \
                else scene.layers(variant)
            row, labels = run_one(layers, scene or scenes[0], variant, seed,
                                  sample_size, out)
            log.info("%-45s %-9s seed %d: k=%2d OA %.3f ARI %.3f (%.0f s)",
                     row["variant"], row["sensor"], seed, row["k"],
                     row["oa"], row["ari"], row["seconds"])
            rows.append(row)
            maps.setdefault((row["variant"], row["sensor"]), []).append(
                labels)
            _append_csv(out / "runs.csv", row)
    # Rows of earlier runs kept with --append join the summary (without
    # the maps that the agreement between seeds needs).
    summary = summarise(_read_csv(out / "runs.csv"), maps)
    _write_csv(out / "summary.csv", summary)
    plot(summary, out / "summary.png")
    return rows


def summarise(rows: list[dict], maps: dict) -> list[dict]:
    """Worst / median / best OA and ARI over seeds, per variant x sensor."""
    out = []
    for (variant, sensor), group in _groups(rows).items():
        oa = np.array([r["oa"] for r in group])
        ari = np.array([r["ari"] for r in group])
        pairs = list(itertools.combinations(
            maps.get((variant, sensor), []), 2))
        stability = np.mean([map_agreement(a, b) for a, b in pairs]) \
            if pairs else np.nan
        out.append({
            "variant": variant, "lever": group[0]["lever"],
            "sensor": sensor, "n_seeds": len(group),
            "oa_min": oa.min(), "oa_median": np.median(oa),
            "oa_max": oa.max(), "ari_min": ari.min(),
            "ari_median": np.median(ari), "ari_max": ari.max(),
            "k": "/".join(str(r["k"]) for r in group),
            "seed_map_ari": round(float(stability), 4),
            "silhouette": np.median([r["silhouette"] for r in group]),
            "seconds": np.median([r["seconds"] for r in group])})
    return out


def _groups(rows):
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["variant"], r["sensor"]), []).append(r)
    return groups


def plot(summary: list[dict], path: Path) -> None:
    """OA and ARI (worst seed as bar, best as tick) per variant x sensor.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants_ = list(dict.fromkeys(r["variant"] for r in summary))
    sensors = list(dict.fromkeys(r["sensor"] for r in summary))
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.32 * len(variants_) + 2),
                             sharey=True)
    height = 0.8 / len(sensors)
    y = np.arange(len(variants_))
    for ax, metric, target in zip(axes, ("oa", "ari"), (0.72, 0.40)):
        for i, sensor in enumerate(sensors):
            rows = {r["variant"]: r for r in summary
                    if r["sensor"] == sensor}
            low = [rows[v][f"{metric}_min"] if v in rows else np.nan
                   for v in variants_]
            high = [rows[v][f"{metric}_max"] if v in rows else np.nan
                    for v in variants_]
            pos = y + (i - (len(sensors) - 1) / 2) * height
            ax.barh(pos, low, height, label=f"{sensor} (worst seed)")
            ax.plot(high, pos, "k|", markersize=6)
        ax.axvline(target, color="red", lw=1, ls="--")
        ax.set_xlabel(f"{'OA (many-to-one)' if metric == 'oa' else 'ARI'}"
                      f"; target {target}; tick = best seed")
        ax.set_xlim(0, 1)
    axes[0].set_yticks(y, variants_, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _append_csv(path: Path, row: dict) -> None:
    """Append `row` under the file's own header (written if new)."""
    fields = list(row)
    if path.exists():
        with open(path, newline="") as f:
            fields = next(csv.reader(f))
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if f.tell() == 0:
            writer.writeheader()
        writer.writerow(row)


def _read_csv(path: Path) -> list[dict]:
    numbers = ("seed", "k", "oa", "ari", "silhouette", "seconds")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row.update({key: float(row[key]) for key in numbers})
        row["k"], row["seed"] = int(row["k"]), int(row["seed"])
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stacks-dir", type=Path, required=True,
                        help="results/<region>: holds <sensor>/stack.zarr "
                             "and reference.tif")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for runs.csv, summary.csv/png")
    parser.add_argument("--quick", action="store_true",
                        help="100,000-pixel sample, one seed")
    parser.add_argument("--sensors", nargs="+",
                        default=["landsat", "sentinel2"])
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="default: 0 1 2 3 4 (--quick: 0)")
    parser.add_argument("--sample-size", type=int, default=None,
                        help="default: 1000000 (--quick: 100000)")
    parser.add_argument("--only", default=None,
                        help="run the variants whose name contains this")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows of runs.csv already in --out "
                             "and summarise them too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    for name in ("lithomap.cluster", "lithomap.sample", "lithomap.choose_k",
                 "lithomap.evaluate"):
        logging.getLogger(name).setLevel(logging.WARNING)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2, 3, 4])
    sample_size = args.sample_size or (100_000 if args.quick
                                       else 1_000_000)
    out = args.out
    if not args.append and (out / "runs.csv").exists():
        (out / "runs.csv").unlink()
    run(args.stacks_dir, out, args.sensors, seeds, sample_size, args.only)


if __name__ == "__main__":
    main()
