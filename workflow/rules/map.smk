# Encode, assign and smooth every chunk of the grid; write the map.


rule map:
    input:
        stack="results/{region}/{sensor}/stack.zarr",
        model="results/{region}/{sensor}/{method}/model",
        kmeans="results/{region}/{sensor}/{method}/kmeans.json",
    output:
        map="results/{region}/{sensor}/{method}/map.tif",
        summary="results/{region}/{sensor}/{method}/map.json",
    params:
        dask=CONFIG["dask"],
        settings=stage_settings("map"),
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/{sensor}/{method}/map.log",
    benchmark:
        "results/{region}/benchmarks/{sensor}_{method}_map.tsv"
    threads: workflow.cores
    resources:
        mem_mb=3000,
    script:
        "../scripts/map.py"
