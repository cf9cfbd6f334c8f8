# Helpers shared by the rules: what each region runs, and where files go.

from lithomap.config import FUSED, mapped_sensors
from lithomap.config import sensors as region_sensors
from lithomap.products import READERS


def region_cfg(wildcards):
    return CONFIG["regions"][wildcards.region]


def settings(wildcards):
    return region_cfg(wildcards)["settings"]


# The settings each stage reads. A rule's params hold only these, because
# Snakemake reruns a job when its params change: editing k must not
# rebuild the stack or retrain the autoencoders.
ENRICH_KEYS = ["normalise", "normalise_groups", "indices", "context_px",
               "context_mode"]
STAGE_KEYS = {
    "sample": ["seed", "sample_size"] + ENRICH_KEYS,
    "reduce": ["seed", "scaling"] + ENRICH_KEYS,
    "cluster": ["seed", "k", "k_range", "k_rule", "k_sweep_n",
                "silhouette_n", "kmeans_n_init", "clusterer", "gmm_fit_n",
                "gmm_n_init", "gmm_covariance", "gmm_reg_covar"],
    "map": ["majority_window_px"] + ENRICH_KEYS,
}


def stage_settings(stage):
    """Params function: the region's settings that `stage` reads."""
    def pick(wildcards):
        every = settings(wildcards)
        return {k: every[k] for k in STAGE_KEYS[stage] if k in every}
    return pick


def stack_region(wildcards):
    """The part of a region's config that its `sensor` stack depends on."""
    region = region_cfg(wildcards)
    sensor = wildcards.sensor
    every = region["settings"]
    return {
        "grid": region["grid"],
        "scenes": [s for s in region["scenes"] if s["sensor"] == sensor],
        "bands": {k: v for k, v in region["bands"].items() if k == sensor},
        "settings": {"chunk_px": every["chunk_px"],
                     "resampling": every["resampling"],
                     "sensors": {sensor: every.get("sensors", {}).get(sensor, {})}},
    }


def method_cfg(wildcards):
    return CONFIG["methods"][wildcards.method]


def scene_inputs(wildcards):
    """Scene files Snakemake should wait for: those that exist, or that a
    rule makes under results/ (generated demo scenes)."""
    paths = [s["path"] for s in region_cfg(wildcards)["scenes"]
             if s["sensor"] == wildcards.sensor]
    return [p for p in paths if os.path.exists(p) or p.startswith("results/")]


def region_runs(region):
    """(sensor, method) pairs a region maps."""
    cfg = CONFIG["regions"][region]
    return [(s, m) for s in mapped_sensors(cfg) for m in cfg["methods"]]


def all_outputs():
    out = []
    for region in CONFIG["run"]:
        for sensor, method in region_runs(region):
            out.append(f"results/{region}/{sensor}/{method}/map.tif")
        out.append(f"results/{region}/summary.json")
        out.append(f"results/{region}/report.html")
        if CONFIG["regions"][region].get("reference"):
            out.append(f"results/{region}/accuracy_summary.csv")
    return out
