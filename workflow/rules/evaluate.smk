# Score every map of a region against its reference geological map.


def first_stack(wildcards):
    """Any stack of the region: all of them share the region grid."""
    sensor = region_sensors(region_cfg(wildcards))[0]
    return f"results/{wildcards.region}/{sensor}/stack.json"


rule rasterize_reference:
    input:
        stack=first_stack,
    output:
        "results/{region}/reference.tif",
    params:
        reference=lambda wc: region_cfg(wc)["reference"],
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/rasterize_reference.log",
    script:
        "../scripts/rasterize_reference.py"


rule evaluate:
    input:
        map="results/{region}/{sensor}/{method}/map.tif",
        reference="results/{region}/reference.tif",
        features="results/{region}/{sensor}/{method}/features_sample.npy",
        labels="results/{region}/{sensor}/{method}/labels_sample.npy",
    output:
        accuracy="results/{region}/{sensor}/{method}/accuracy.json",
        confusion="results/{region}/{sensor}/{method}/confusion.csv",
        figure="results/{region}/{sensor}/{method}/confusion.png",
    params:
        reference=lambda wc: region_cfg(wc)["reference"],
        seed=lambda wc: settings(wc)["seed"],  # internal scores only
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/{sensor}/{method}/evaluate.log",
    script:
        "../scripts/evaluate.py"


rule accuracy_summary:
    input:
        lambda wc: [f"results/{wc.region}/{s}/{m}/accuracy.json"
                    for s, m in region_runs(wc.region)],
    output:
        csv="results/{region}/accuracy_summary.csv",
        md="results/{region}/accuracy_summary.md",
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/accuracy_summary.log",
    script:
        "../scripts/accuracy_summary.py"
