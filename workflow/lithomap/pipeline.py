"""The stages of the workflow, one function each, called by rule scripts.

Every stage reads what the previous one wrote, writes its own outputs
completely or not at all, and returns a small JSON-able summary (sizes,
choices, seconds) that the run summary collects.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time

import dask
import dask.array as da
import numpy as np

from lithomap import cluster, enrich, export, progress, smooth
from lithomap.choose_k import choose_k, write_choice
from lithomap.reduce import REDUCERS, FeatureModel, ReducerError, Scaler
from lithomap.sample import draw_sample
from lithomap.stack import open_stack, write_json, zarr_codecs

log = logging.getLogger(__name__)


def _save_npy(path: str, array: np.ndarray) -> None:
    tmp = f"{path}.part.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


def sample(stack_path: str, out_npy: str, settings: dict) -> dict:
    """Draw the seeded pixel sample that every model is fitted on."""
    start = time.perf_counter()
    stack, _, attrs = open_stack(stack_path)
    stack = enrich.apply(stack, attrs["bands"], attrs["sensor"], settings)
    values, index = draw_sample(stack, settings["sample_size"],
                                settings["seed"], attrs["n_usable"])
    _save_npy(out_npy, values)
    _save_npy(out_npy.replace(".npy", "_index.npy"), index)
    return {"n_sample": len(values), "n_usable": attrs["n_usable"],
            "seconds": round(time.perf_counter() - start, 3)}


def fit_features(sample_npy: str, bands: list[str], method: dict,
                 settings: dict, model_dir: str, features_npy: str) -> dict:
    """Fit scaling and the method's reducer on the sample; encode it."""
    start = time.perf_counter()
    x = np.load(sample_npy)
    params = {k: v for k, v in method.items() if k != "reducer"}
    kind = method["reducer"]
    if kind not in REDUCERS:
        raise ReducerError(f"reducer: {kind!r} is not available in this "
                           f"installation; available: {sorted(REDUCERS)}")
    scaler = Scaler(settings["scaling"]).fit(x)
    reducer = REDUCERS[kind](**params).fit(scaler.transform(x),
                                           settings["seed"])
    model = FeatureModel(scaler, reducer, bands)
    model.save(model_dir)
    features = model.transform(x)
    _save_npy(features_npy, features)
    summary = {"reducer": kind, "n_features": reducer.n_features,
               "seconds": round(time.perf_counter() - start, 3)}
    log.info("%s: %d bands -> %d features in %.1f s", kind, x.shape[1],
             reducer.n_features, summary["seconds"])
    return summary


def fit_clusters(features_npy: str, settings: dict, out_json: str,
                 labels_npy: str, selection_prefix: str) -> dict:
    """k-means or a Gaussian mixture (``clusterer``) on the encoded
    sample; writes k, the model and the labels of the sample. With ``k:
    auto``, k is chosen first by sweeping ``k_range`` (table and, for
    k-means, figures at `selection_prefix` .png/.json/.csv).
    """
    start = time.perf_counter()
    features = np.load(features_npy)
    k = settings["k"]
    if k == "auto" and settings["k_rule"] in ("bic", "bic_knee"):
        table = cluster.sweep_bic(
            features, settings["k_range"], settings["seed"],
            settings["k_sweep_n"], covariance=settings["gmm_covariance"],
            reg_covar=settings["gmm_reg_covar"])
        k = cluster.pick_k_bic(
            table, "min" if settings["k_rule"] == "bic" else "knee")
        table.to_csv(f"{selection_prefix}.csv", index=False)
        write_json(f"{selection_prefix}.json",
                   {**table.attrs, "rule": settings["k_rule"],
                    "chosen_k": k, "bic": table["bic"].tolist()})
        log.info("k = %d chosen by %s over k in %s", k,
                 settings["k_rule"], settings["k_range"])
    elif k == "auto":
        k, table = choose_k(
            features, settings["k_range"], settings["k_rule"],
            settings["seed"], settings["silhouette_n"],
            settings["k_sweep_n"], settings["kmeans_n_init"])
        write_choice(table, f"{selection_prefix}.png",
                     f"{selection_prefix}.json", f"{selection_prefix}.csv")
        log.info("k = %d chosen by %s over k in %s", k,
                 table.attrs.get("rule_applied"), settings["k_range"])
    model = cluster.fit(features, k, settings)
    _save_npy(labels_npy, cluster.predict(features, model))
    result = {"k": int(k), "k_from": "auto" if settings["k"] == "auto"
              else "config", "model": model,
              "seconds": round(time.perf_counter() - start, 3)}
    if model["kind"] == "kmeans":
        result["centroids"] = model["centroids"]
    write_json(out_json, result)
    return {"k": result["k"], "k_from": result["k_from"],
            "seconds": result["seconds"]}


def _classify_block(block, model, clusters):
    """Cluster numbers (y, x) of one stack chunk (band, y, x); 0 unusable."""
    nb, h, w = block.shape
    flat = block.reshape(nb, -1)
    usable = ~np.isnan(flat).any(axis=0)
    out = np.zeros(h * w, np.uint8)
    if usable.any():
        # Gathered band by band, the pixels come out band-major; their
        # transpose is a free view that BLAS multiplies fast.
        pixels = flat[:, usable].T
        out[usable] = cluster.predict(model.transform(pixels), clusters)
    return out.reshape(h, w)


def lazy_map(stack: da.Array, model: FeatureModel, clusters: dict,
             window_px: int) -> da.Array:
    """Dask array (y, x) of the smoothed map, uint8, 0 = nodata.

    `clusters` is a `lithomap.cluster.fit` model dict.
    """
    block = functools.partial(_classify_block, model=model,
                              clusters=clusters)
    labels = stack.map_blocks(block, drop_axis=0, dtype=np.uint8,
                              meta=np.empty((0, 0), np.uint8))
    return smooth.majority_dask(labels, window_px,
                                cluster.n_clusters(clusters))


def classify(stack_path: str, model_dir: str, kmeans_json: str,
             settings: dict, out_tif: str) -> dict:
    """Encode, assign and smooth every chunk; write the map."""
    start = time.perf_counter()
    stack, grid, attrs = open_stack(stack_path)
    stack = enrich.apply(stack, attrs["bands"], attrs["sensor"], settings)
    model = FeatureModel.load(model_dir)
    with open(kmeans_json) as f:
        doc = json.load(f)
    clusters = doc["model"]
    labels = lazy_map(stack, model, clusters,
                      settings["majority_window_px"])
    # Workers (threads or a cluster) write chunks to Zarr in parallel; only
    # then does this process copy them into the GeoTIFF, window by window.
    # Absolute: workers of a cluster may run in another folder.
    scratch = os.path.abspath(f"{out_tif}.labels.zarr")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with progress.for_array(log, labels, what="map"):
            da.to_zarr(labels, scratch, overwrite=True, **zarr_codecs())
        computed = time.perf_counter()
        with dask.config.set(scheduler="threads"):
            export.write_map(da.from_zarr(scratch), grid, out_tif,
                             cluster.n_clusters(clusters))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    end = time.perf_counter()
    return {"seconds": round(end - start, 3),
            "seconds_classify": round(computed - start, 3),
            "seconds_write": round(end - computed, 3),
            "majority_window_px": settings["majority_window_px"]}
