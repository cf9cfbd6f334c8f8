# Read the scenes of one sensor and put every band on the region grid; with
# fusion, join the sensors' stacks into one.


rule stack:
    input:
        scene_inputs,
    output:
        stack=directory("results/{region}/{sensor}/stack.zarr"),
        summary="results/{region}/{sensor}/stack.json",
    wildcard_constraints:
        sensor="|".join(READERS),
    params:
        dask=CONFIG["dask"],
        region=stack_region,
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/{sensor}/stack.log",
    benchmark:
        "results/{region}/benchmarks/{sensor}_stack.tsv"
    threads: workflow.cores
    resources:
        mem_mb=3000,
    script:
        "../scripts/stack.py"


rule fuse:
    input:
        lambda wildcards: [
            f"results/{wildcards.region}/{sensor}/stack.zarr"
            for sensor in region_sensors(region_cfg(wildcards))
        ],
    output:
        stack=directory(f"results/{{region}}/{FUSED}/stack.zarr"),
        summary=f"results/{{region}}/{FUSED}/stack.json",
    params:
        dask=CONFIG["dask"],
    conda:
        "../../envs/geo.yaml"
    log:
        f"logs/{{region}}/{FUSED}/stack.log",
    benchmark:
        f"results/{{region}}/benchmarks/{FUSED}_stack.tsv"
    threads: workflow.cores
    resources:
        mem_mb=3000,
    script:
        "../scripts/fuse.py"


rule sample:
    input:
        "results/{region}/{sensor}/stack.zarr",
    output:
        sample="results/{region}/{sensor}/sample.npy",
        index="results/{region}/{sensor}/sample_index.npy",
        summary="results/{region}/{sensor}/sample.json",
    params:
        dask=CONFIG["dask"],
        settings=stage_settings("sample"),
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/{sensor}/sample.log",
    threads: workflow.cores
    script:
        "../scripts/sample.py"
