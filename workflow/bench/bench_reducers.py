"""Benchmark the reducers: training time and encoding throughput.

Not a test: run it by hand on the target machine and keep the JSON.

    python workflow/bench/bench_reducers.py --out results/bench/reducers.json

The pixels are real: the 10 bands of the Sentinel-2 demo scene
(``../shared/data/sentinel2/S2A_29RKH_20200219_0_L2A``, 20 m bands as
stored at 200 m, 10 m bands decimated by 2 onto that grid; 301,401 valid
pixels). To reach 1e6 pixels they are drawn with replacement and given a
small Gaussian noise (sd 0.002 in reflectance, about 1 % of a band's
spread), so no two rows are identical. 20,000 real pixels left out of the
draw measure the held-out reconstruction error, in scaled units.

Encoding is timed four ways on the 1e6 pixels: `transform` (NumPy) in
one thread, with BLAS limited to one thread and without that limit;
`transform` on 4 chunks spread over 2 threads, BLAS limited (as Dask's
threaded scheduler would run it); and Keras' ``predict`` of the same
weights. Each is the best of `REPEATS` runs: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

try:
    import lithomap
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import lithomap

from lithomap.reduce import PCAReducer, Scaler
from lithomap.reduce.autoencoder import (
    AutoencoderReducer,
    StackedAutoencoderReducer,
)

log = logging.getLogger("bench_reducers")

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT.parent / "shared/data/sentinel2/S2A_29RKH_20200219_0_L2A"
BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11",
         "B12"]
NOISE_REFLECTANCE = 0.002
HELD_OUT_PX = 20_000
REPEATS = 3

REDUCERS = {
    "pca": lambda p: PCAReducer(n_components=5),
    "autoencoder": lambda p: AutoencoderReducer(**p),
    "cascade": lambda p: StackedAutoencoderReducer(variant="cascade", **p),
    "greedy": lambda p: StackedAutoencoderReducer(variant="greedy", **p),
}


def read_scene(folder: Path) -> np.ndarray:
    """Reflectance (pixels, 10) of the valid pixels of the demo scene."""
    import rasterio

    layers = []
    for band in BANDS:
        with rasterio.open(folder / f"{band}.tif") as src:
            dn = src.read(1)
        layers.append((dn[::2, ::2] if dn.shape[0] == 1098 else dn).ravel())
    dn = np.stack(layers, axis=1)
    return (dn[(dn > 0).all(axis=1)] / 10_000).astype(np.float32)


def make_pixels(reflectance, n_px, seed):
    """Scaled bench pixels (n_px, 10), held-out pixels, and the scaler."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(reflectance))
    held_out = reflectance[order[:HELD_OUT_PX]]
    pool = reflectance[order[HELD_OUT_PX:]]
    pixels = pool[rng.integers(0, len(pool), n_px)]
    pixels += rng.normal(0, NOISE_REFLECTANCE, pixels.shape).astype(
        np.float32)
    scaler = Scaler("standard").fit(pixels)
    return scaler.transform(pixels), scaler.transform(held_out)


def seconds(fn, *args, repeats=1):
    """(result, best wall seconds of `repeats` runs) of fn(*args)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return out, best


def encode_threads(reducer, x, threads=2, chunks=4):
    """transform over `chunks` pieces of `x` on a pool of `threads`."""
    with ThreadPoolExecutor(threads) as pool:
        return np.concatenate(list(pool.map(reducer.transform,
                                            np.array_split(x, chunks))))


def bench_one(name, reducer, x, held_out, seed):
    """Figures for one reducer: fit, encodings, held-out error."""
    log.info("%s: fitting on %d pixels", name, len(x))
    _, fit_s = seconds(reducer.fit, x, seed)
    _, default_s = seconds(reducer.transform, x, repeats=REPEATS)
    with threadpool_limits(1, user_api="blas"):
        features, numpy_s = seconds(reducer.transform, x, repeats=REPEATS)
        _, threads_s = seconds(encode_threads, reducer, x, repeats=REPEATS)
    mpx = len(x) / 1e6
    result = {
        "fit_s": round(fit_s, 2),
        "n_features": reducer.n_features,
        "encode_numpy_1thread_s": round(numpy_s, 3),
        "encode_numpy_1thread_mpx_s": round(mpx / numpy_s, 2),
        "encode_numpy_2threads_s": round(threads_s, 3),
        "encode_numpy_2threads_mpx_s": round(mpx / threads_s, 2),
        "encode_numpy_1thread_blas_unlimited_s": round(default_s, 3),
        "heldout_mse_scaled": float(np.mean(
            (reducer.reconstruct(held_out) - held_out) ** 2)),
    }
    if hasattr(reducer, "encode_keras"):
        reducer.encode_keras(x[:1000])  # build and compile first
        keras_features, predict_s = seconds(reducer.encode_keras, x,
                                            repeats=REPEATS)
        result.update({
            "encode_keras_predict_s": round(predict_s, 3),
            "encode_keras_predict_mpx_s": round(mpx / predict_s, 2),
            "max_abs_diff_numpy_vs_predict": float(
                np.abs(keras_features - features).max()),
            "history": {k: reducer.history_[k] for k in
                        ("backend", "n_train", "n_val", "seconds")},
            "phases": [{k: p[k] for k in ("phase", "epochs_run",
                                          "best_epoch", "best_val_loss",
                                          "seconds")}
                       for p in reducer.history_["phases"]],
        })
    log.info("%s: %s", name, json.dumps(result))
    return result


def environment():
    """What the figures were measured on."""
    info = {"python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "numpy": np.__version__,
            "lithomap": lithomap.__version__,
            "load_average_1min": os.getloadavg()[0]}
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        info.update(keras=keras.__version__,
                    keras_backend=keras.backend.backend())
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--pixels", type=float, default=1e6,
                        help="bench sample size (default: 1e6)")
    parser.add_argument("--reducers", nargs="+", default=list(REDUCERS),
                        choices=list(REDUCERS), help="which to run")
    parser.add_argument("--train-size", type=int, default=200_000,
                        help="autoencoders' train_size; 0: whole sample "
                        "(default: 200000)")
    parser.add_argument("--epochs", type=int, default=50,
                        help="autoencoders' epochs (default: 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scene", type=Path, default=SCENE,
                        help="Sentinel-2 scene folder (per-band COGs)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    pixels, held_out = make_pixels(read_scene(args.scene), int(args.pixels),
                                   args.seed)
    params = {"train_size": args.train_size or None, "epochs": args.epochs}
    results = {}
    for name in args.reducers:
        results[name] = bench_one(name, REDUCERS[name](params), pixels,
                                  held_out, args.seed)
    report = {"sample": {"pixels": len(pixels), "scene": str(args.scene),
                         "made_by": "real pixels drawn with replacement "
                         f"+ N(0, {NOISE_REFLECTANCE}) reflectance noise",
                         "held_out_real_pixels": len(held_out)},
              "settings": params, "environment": environment(),
              "reducers": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
