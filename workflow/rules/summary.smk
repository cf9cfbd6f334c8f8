# One JSON per region: pixels used, k, and seconds per stage, per map.


def summary_inputs(wildcards):
    out = []
    for sensor, method in region_runs(wildcards.region):
        base = f"results/{wildcards.region}/{sensor}"
        out += [f"{base}/stack.json", f"{base}/sample.json"]
        out += [f"{base}/{method}/{s}.json" for s in ("reduce", "cluster",
                                                      "map")]
    return sorted(set(out))


rule summary:
    input:
        summary_inputs,
    output:
        "results/{region}/summary.json",
    params:
        runs=lambda wc: region_runs(wc.region),
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/summary.log",
    script:
        "../scripts/summary.py"
