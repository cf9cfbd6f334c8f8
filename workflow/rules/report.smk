# Labels from the matched reference units, and one HTML report per region.


def accuracy_input(wildcards):
    """The run's accuracy.json when its region has a reference map."""
    if not region_cfg(wildcards).get("reference"):
        return []
    return [f"results/{wildcards.region}/{wildcards.sensor}/"
            f"{wildcards.method}/accuracy.json"]


rule style_map:
    input:
        map="results/{region}/{sensor}/{method}/map.tif",
        accuracy=accuracy_input,
    output:
        qml="results/{region}/{sensor}/{method}/map.qml",
        classes="results/{region}/{sensor}/{method}/map_classes.csv",
    params:
        matching="many_to_one",
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/{sensor}/{method}/style_map.log",
    threads: 1
    resources:
        mem_mb=500,
    script:
        "../scripts/style_map.py"


def report_inputs(wildcards):
    """Every file the report shows, for each run of the region."""
    region = wildcards.region
    scored = bool(CONFIG["regions"][region].get("reference"))
    out = []
    for sensor, method in region_runs(region):
        base = f"results/{region}/{sensor}"
        run = f"{base}/{method}"
        out += [f"{base}/stack.json", f"{base}/stack.zarr",
                f"{base}/sample.json", f"{run}/model", f"{run}/map.tif",
                f"{run}/map_classes.csv"]
        out += [f"{run}/{stage}.json" for stage in ("reduce", "cluster",
                                                    "map")]
        if scored:
            out += [f"{run}/accuracy.json", f"{run}/confusion.png"]
    return sorted(set(out))


rule report:
    input:
        report_inputs,
    output:
        html="results/{region}/report.html",
    params:
        runs=lambda wc: region_runs(wc.region),
        description=lambda wc: CONFIG["regions"][wc.region].get(
            "description", ""),
        results_dir="results",
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/report.log",
    threads: 1
    resources:
        mem_mb=1500,
    script:
        "../scripts/report.py"
