# k-means on the encoded sample.


rule cluster:
    input:
        features="results/{region}/{sensor}/{method}/features_sample.npy",
    output:
        kmeans="results/{region}/{sensor}/{method}/kmeans.json",
        summary="results/{region}/{sensor}/{method}/cluster.json",
    params:
        settings=settings,
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/{sensor}/{method}/cluster.log",
    threads: workflow.cores
    script:
        "../scripts/cluster.py"
