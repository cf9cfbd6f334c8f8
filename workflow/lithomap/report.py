"""The HTML report of one region: one self-contained file per region.

`build_report` gathers what the stages of every (sensor, method) run left
in ``results/{region}/`` and renders ``workflow/report/report.html.j2``
into one HTML file, with every image inlined as a base64 PNG so that the
file can be mailed or archived alone. Sections:

- the scenes, the grid and the masks (pixels kept) of each sensor, with a
  colour quicklook of the stack;
- per run: a quicklook of the map with its legend, the k-selection and
  autoencoder loss curves, the accuracy table and confusion heatmap, and
  the seconds each stage took;
- a summary that compares the runs.

Files that a run did not make (no reference, k given, PCA) are skipped
with a note, never an error. Quicklooks are decimated reads: the map's
overviews through GDAL, the stack's Zarr chunks one at a time through
Dask, so a 10980 x 10980 grid is never loaded whole.
"""

from __future__ import annotations

import base64
import datetime
import glob
import io
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
from rasterio.enums import Resampling

from lithomap import export

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parents[1] / "report" / "report.html.j2"
"""The report's Jinja2 template (workflow/report/report.html.j2)."""

STAGES = ("stack", "sample", "reduce", "cluster", "map")
"""Stages whose JSON summary carries "seconds", in running order."""

QUICKLOOK_PX = 800
"""Longest side of a quicklook, in image pixels."""

RGB_BANDS = (
    ("true colour", ("B04", "B03", "B02")),
    ("true colour", ("SR_B4", "SR_B3", "SR_B2")),
    ("true colour", ("B4", "B3", "B2")),
    ("false colour", ("3N", "2", "1")),
)
"""Band triples tried, in order, for the stack quicklook."""


SCORE_LABELS = {"ari": "ARI", "nmi": "NMI", "ami": "AMI",
                "v_measure": "V-measure", "silhouette": "silhouette",
                "calinski_harabasz": "Calinski-Harabasz",
                "davies_bouldin": "Davies-Bouldin"}
"""Column heads of the scores."""


class ReportError(ValueError):
    """The report cannot be made from the results given."""


@dataclass
class Run:
    """What the report shows of one (sensor, method) run."""

    sensor: str
    method: str
    folder: str
    stages: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    quicklook: str | None = None
    figures: list = field(default_factory=list)
    accuracy: dict | None = None
    notes: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.sensor} / {self.method}"

    @property
    def anchor(self) -> str:
        return f"run-{self.sensor}-{self.method}"

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))


# --- entry point -------------------------------------------------------------

def build_report(region: str, runs, out_html: str,
                 results_dir: str = "results", description: str = "",
                 quicklook_px: int = QUICKLOOK_PX,
                 template: str | os.PathLike = TEMPLATE) -> dict:
    """Write the report of `region` to `out_html`.

    Parameters
    ----------
    region : str
        Region name; its results are in ``{results_dir}/{region}``.
    runs : iterable of (str, str)
        (sensor, method) pairs to show, in order.
    out_html : str
        The HTML file to write (replaced whole, or not at all).
    results_dir : str, default "results"
        Folder holding the region folders.
    description : str, default ""
        The region's description from config.
    quicklook_px : int, default 800
        Longest side of the quicklooks.
    template : path-like
        Jinja2 template; default ``workflow/report/report.html.j2``.

    Returns
    -------
    dict
        What went in: sensors, runs, and files that were missing.
    """
    runs = [tuple(r) for r in runs]
    if not runs:
        raise ReportError(f"report of region {region!r}: no (sensor, "
                          "method) run to show; check the region's methods")
    root = os.path.join(results_dir, region)
    sensors = {s: _sensor_section(root, s, quicklook_px)
               for s in dict.fromkeys(s for s, _ in runs)}
    shown = [_run_section(root, s, m, sensors[s], quicklook_px)
             for s, m in runs]
    context = {
        "region": region, "description": description.strip(),
        "sensors": list(sensors.values()), "runs": shown,
        "summary": _summary(shown),
        "timing_figure": _timing_figure(shown),
        "made": datetime.datetime.now().astimezone().strftime(
            "%Y-%m-%d %H:%M %Z"),
        "version": _version(),
        "labels": SCORE_LABELS,
    }
    html = _render(template, context)
    _write_text(out_html, html)
    missing = [n for r in shown for n in r.notes]
    log.info("report %s: %d sensor(s), %d run(s), %.0f kB; %d note(s)",
             out_html, len(sensors), len(shown), len(html) / 1e3,
             len(missing))
    return {"sensors": list(sensors), "runs": [r.name for r in shown],
            "notes": missing, "bytes": len(html.encode())}


# --- sensors: scenes, grid, masks --------------------------------------------

def _sensor_section(root: str, sensor: str, quicklook_px: int) -> dict:
    folder = os.path.join(root, sensor)
    stack = _load_json(os.path.join(folder, "stack.json")) or {}
    sample = _load_json(os.path.join(folder, "sample.json")) or {}
    section = {"sensor": sensor, "stack": stack, "sample": sample,
               "grid": _grid_facts(stack.get("grid")), "notes": [],
               "quicklook": None, "quicklook_caption": "", "kept": None}
    if not stack:
        section["notes"].append(f"{sensor}: no stack.json; scenes and "
                                "masks unknown")
    n_pixels, n_usable = stack.get("n_pixels"), stack.get("n_usable")
    if n_pixels and n_usable is not None:
        section["kept"] = {"pixels": n_pixels, "usable": n_usable,
                           "masked": n_pixels - n_usable,
                           "percent": 100 * n_usable / n_pixels}
    zarr_path = os.path.join(folder, "stack.zarr")
    if os.path.isdir(zarr_path):
        try:
            png, caption = stack_quicklook(zarr_path, stack.get("bands"),
                                           quicklook_px)
            section["quicklook"] = _data_uri(png)
            section["quicklook_caption"] = caption
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: no quicklook of the stack: %s", zarr_path, exc)
            section["notes"].append(f"no quicklook of the stack ({exc})")
    return section


def _grid_facts(grid: dict | None) -> dict | None:
    if not grid:
        return None
    a, _, c, _, e, f = grid["transform"][:6]
    width, height = grid["width"], grid["height"]
    return {"epsg": grid.get("epsg"), "width": width, "height": height,
            "res": (abs(a), abs(e)),
            "bounds": (c, f + e * height, c + a * width, f),
            "area_km2": abs(a * e) * width * height / 1e6}


def stack_quicklook(zarr_path: str, bands: list[str] | None,
                    max_px: int = QUICKLOOK_PX) -> tuple[bytes, str]:
    """PNG of three bands of a stack, decimated, and its caption.

    Every `step`-th pixel is read, chunk by chunk; each band is stretched
    between its 2nd and 98th percentiles; masked pixels are transparent.
    """
    stack = da.from_zarr(zarr_path)
    _, height, width = stack.shape
    bands = list(bands) if bands else [str(i + 1) for i in
                                       range(stack.shape[0])]
    kind, picked = _rgb_choice(bands)
    step = max(1, math.ceil(max(height, width) / max_px))
    index = [bands.index(b) for b in picked]
    # TODO: every Zarr chunk is still decompressed (all bands sit in one
    # chunk); a decimated copy written by the stack stage would make this
    # free on full 10980 px tiles.
    small = stack[index][:, ::step, ::step].compute()
    rgba = _stretch(small)
    caption = (f"{kind} ({', '.join(picked)}), every {step} px; "
               "each band stretched 2-98 %; checkered: masked")
    return _png(rgba, colours=256), caption


def _rgb_choice(bands: list[str]) -> tuple[str, tuple[str, ...]]:
    # A fused stack names its bands "<sensor>:<band>".
    prefixes = [""] + list(dict.fromkeys(
        b.partition(":")[0] + ":" for b in bands if ":" in b))
    for kind, triple in RGB_BANDS:
        for prefix in prefixes:
            named = tuple(prefix + b for b in triple)
            if all(b in bands for b in named):
                return kind, named
    if len(bands) >= 3:
        return "bands", tuple(bands[:3])
    return "band", (bands[0],) * 3


def _stretch(bands: np.ndarray) -> np.ndarray:
    """(3, y, x) reflectance -> (y, x, 4) uint8; NaN transparent."""
    valid = ~np.isnan(bands).any(axis=0)
    rgba = np.zeros(bands.shape[1:] + (4,), np.uint8)
    if not valid.any():
        return rgba
    for i, band in enumerate(bands):
        low, high = np.percentile(band[valid], [2, 98])
        scaled = (band - low) / max(high - low, 1e-6)
        rgba[..., i] = np.clip(np.nan_to_num(scaled) * 255, 0, 255)
    rgba[..., 3] = np.where(valid, 255, 0)
    return rgba


# --- runs -----------------------------------------------------------------

def _run_section(root: str, sensor: str, method: str, sensor_section: dict,
                 quicklook_px: int) -> Run:
    folder = os.path.join(root, sensor, method)
    run = Run(sensor, method, folder)
    _collect_stages(run, root, sensor_section)
    _collect_map(run, quicklook_px)
    _collect_figures(run)
    _collect_accuracy(run)
    return run


def _collect_stages(run: Run, root: str, sensor_section: dict) -> None:
    run.stages["stack"] = sensor_section["stack"]
    run.stages["sample"] = sensor_section["sample"]
    for stage in ("reduce", "cluster", "map"):
        doc = _load_json(os.path.join(run.folder, f"{stage}.json"))
        run.stages[stage] = doc or {}
        if doc is None:
            run.notes.append(f"no {stage}.json")
    for stage in STAGES:
        seconds = run.stages.get(stage, {}).get("seconds")
        if isinstance(seconds, (int, float)):
            run.seconds[stage] = float(seconds)


def _collect_map(run: Run, quicklook_px: int) -> None:
    path = os.path.join(run.folder, "map.tif")
    if not os.path.exists(path):
        run.notes.append("no map.tif")
        return
    csv_path = export.sidecar_paths(path)["csv"]
    if os.path.exists(csv_path):
        run.classes = export.read_class_csv(csv_path)
    else:
        run.classes = _classes_from_map(path)
    run.quicklook = _data_uri(map_quicklook(path, quicklook_px))


def _classes_from_map(path: str) -> list[dict]:
    classes = export.class_table(path)
    mapped = sum(c.count for c in classes) or 1
    return [{"value": c.value, "count": c.count, "area_km2": c.area_km2,
             "percent": 100 * c.count / mapped, "unit": c.unit,
             "label": c.label, "colour": c.hex} for c in classes]


def map_quicklook(path: str, max_px: int = QUICKLOOK_PX) -> bytes:
    """PNG of a map through its colour table, decimated with nearest
    resampling (GDAL reads the matching overview, not the full map)."""
    with rasterio.open(path) as src:
        step = max(1, math.ceil(max(src.height, src.width) / max_px))
        shape = (math.ceil(src.height / step), math.ceil(src.width / step))
        values = src.read(1, out_shape=shape, resampling=Resampling.nearest)
        try:
            colours = src.colormap(1)
        except ValueError:
            colours = export.palette(int(values.max()) or 1)
    lut = np.zeros((256, 4), np.uint8)
    for value, rgba in colours.items():
        lut[value] = rgba
    lut[export.NODATA] = (0, 0, 0, 0)
    return _png(lut[values])


def _collect_figures(run: Run) -> None:
    """Curves the reduce and cluster stages may have drawn."""
    wanted = [("k_selection.png", "Choice of k",
               ("Scores of k-means over the range of k tried; the chosen "
                "k is marked."))]
    model = os.path.join(run.folder, "model")
    losses = sorted(glob.glob(os.path.join(model, "*loss*.png")))
    for path in losses:
        wanted.append((os.path.relpath(path, run.folder), "Autoencoder loss",
                       "Training and validation loss per epoch."))
    for name, title, caption in wanted:
        path = os.path.join(run.folder, name)
        if os.path.exists(path):
            run.figures.append({"title": title, "caption": caption,
                                "file": name, "src": _file_uri(path)})


def _collect_accuracy(run: Run) -> None:
    path = os.path.join(run.folder, "accuracy.json")
    doc = _load_json(path)
    if doc is None:
        return
    try:
        run.accuracy = accuracy_summary(doc)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("%s: cannot read the scores (%s); left out", path, exc)
        run.notes.append(f"accuracy.json unreadable ({exc})")
        return
    figure = os.path.join(run.folder, "confusion.png")
    if os.path.exists(figure):
        run.accuracy["confusion"] = _file_uri(figure)


def accuracy_summary(doc: dict) -> dict:
    """The scores the report shows, from an ``accuracy.json``; numbers
    that are absent or not numbers become None."""
    rows = []
    for name, block in doc["matching"].items():
        ci = block.get("kappa_ci95") or [None, None]
        rows.append({"matching": name.replace("_", "-"),
                     "overall_accuracy": _number(block["overall_accuracy"]),
                     "kappa": _number(block.get("kappa")),
                     "kappa_ci95": [_number(v) for v in ci[:2]],
                     "method": str(block.get("method", ""))})
    partition = doc.get("partition") or {}
    internal = doc.get("internal") or {}
    pixels = doc.get("pixels")
    if isinstance(pixels, dict):
        pixels = pixels.get("compared")
    scores = [r["overall_accuracy"] for r in rows
              if r["overall_accuracy"] is not None]
    return {"matchings": rows,
            "partition": _numbers(partition, ("ari", "nmi", "ami",
                                              "v_measure")),
            "internal": _numbers(internal, ("silhouette",
                                            "calinski_harabasz",
                                            "davies_bouldin")),
            "n_units": len(doc.get("units") or []),
            "pixels": _number(pixels),
            "best_oa": max(scores, default=None)}


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if isinstance(value, float) and math.isnan(value) else value


def _numbers(doc: dict, keys) -> dict:
    out = {k: _number(doc.get(k)) for k in keys}
    return {k: v for k, v in out.items() if v is not None}


# --- summary -----------------------------------------------------------------

def _summary(runs: list[Run]) -> dict:
    """Rows comparing the runs, and sentences naming the best of them."""
    rows = []
    for run in runs:
        kept = run.stages["stack"].get("n_usable")
        oa = {m["matching"]: m["overall_accuracy"]
              for m in (run.accuracy or {}).get("matchings", [])}
        rows.append({
            "run": run, "k": run.stages["cluster"].get("k"),
            "n_features": run.stages["reduce"].get("n_features"),
            "reducer": run.stages["reduce"].get("reducer", run.method),
            "mapped": sum(c["count"] for c in run.classes) or None,
            "usable": kept, "oa_many": oa.get("many-to-one"),
            "oa_one": oa.get("one-to-one"),
            "ari": (run.accuracy or {}).get("partition", {}).get("ari"),
            "seconds": run.total_seconds or None})
    sentences = []
    scored = [r for r in rows if r["oa_many"] is not None]
    if scored:
        best = max(scored, key=lambda r: r["oa_many"])
        sentences.append(
            f"Closest to the reference map: {best['run'].name}, overall "
            f"accuracy {best['oa_many']:.3f} with each cluster matched to "
            "its majority unit.")
        if len(scored) < len(rows):
            sentences.append("Runs without scores have no accuracy.json.")
    else:
        sentences.append("No run was scored against a reference map; "
                         "compare the maps by eye and by their class "
                         "sizes.")
    timed = [r for r in rows if r["seconds"]]
    if len(timed) > 1:
        fast = min(timed, key=lambda r: r["seconds"])
        slow = max(timed, key=lambda r: r["seconds"])
        sentences.append(
            f"Fastest: {fast['run'].name} ({fast['seconds']:.0f} s); "
            f"slowest: {slow['run'].name} ({slow['seconds']:.0f} s).")
    return {"rows": rows, "sentences": sentences,
            "best_oa": max((r["oa_many"] for r in scored), default=None)}


def _timing_figure(runs: list[Run]) -> str | None:
    """Stacked bars of seconds per stage, one bar per run."""
    timed = [r for r in runs if r.seconds]
    if not timed:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 0.5 * len(timed) + 1.2), layout="constrained")
    ax = fig.subplots()
    names = [r.name for r in timed]
    left = np.zeros(len(timed))
    colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2"]
    for stage, colour in zip(STAGES, colours):
        widths = np.array([r.seconds.get(stage, 0.0) for r in timed])
        ax.barh(names, widths, left=left, color=colour, label=stage)
        left += widths
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.legend(ncols=len(STAGES), loc="lower center", fontsize=8,
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return _data_uri(buffer.getvalue())


# --- files and encoding ------------------------------------------------------

def _load_json(path: str) -> dict | None:
    """A JSON file's object, or None (with a warning) when it is absent or
    broken: another stage may not have run."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable, left out of the report: %s", path, exc)
        return None
    return doc if isinstance(doc, dict) else None


def _png(rgba: np.ndarray, colours: int | None = None) -> bytes:
    """PNG bytes of an (y, x, 4) uint8 image; `colours` quantises it to a
    palette of that many colours (a quarter of the size for a photo)."""
    from PIL import Image

    image = Image.fromarray(rgba, "RGBA")
    if colours:
        image = image.quantize(colours, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _file_uri(path: str) -> str:
    with open(path, "rb") as f:
        return _data_uri(f.read())


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lithomap")
    except Exception:  # noqa: BLE001 (not installed: running from a clone)
        return "(from source)"


def _render(template: str | os.PathLike, context: dict) -> str:
    import jinja2

    template = Path(template)
    if not template.exists():
        raise ReportError(f"{template}: report template not found; it ships "
                          "in workflow/report/ of the repository")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent),
        # Missing stage outputs are normal: an absent key renders empty.
        autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt_number
    env.filters["px"] = _fmt_pixels
    return env.get_template(template.name).render(**context)


def _fmt_number(value, digits: int = 3) -> str:
    """Numbers for tables: "-" for what is missing, never an error."""
    value = _number(value)
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _fmt_pixels(value) -> str:
    value = _number(value)
    return "-" if value is None else f"{int(value):,}"


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.part"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
