# Helpers shared by the rules: what each region runs, and where files go.

from lithomap.config import sensors as region_sensors


def region_cfg(wildcards):
    return CONFIG["regions"][wildcards.region]


def settings(wildcards):
    return region_cfg(wildcards)["settings"]


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
    return [(s, m) for s in region_sensors(cfg) for m in cfg["methods"]]


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
