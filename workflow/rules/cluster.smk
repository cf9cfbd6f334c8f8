# k-means on the encoded sample, k from config or chosen from the data.


rule cluster:
    input:
        features="results/{region}/{sensor}/{method}/features_sample.npy",
    output:
        kmeans="results/{region}/{sensor}/{method}/kmeans.json",
        labels="results/{region}/{sensor}/{method}/labels_sample.npy",
        summary="results/{region}/{sensor}/{method}/cluster.json",
    params:
        settings=stage_settings("cluster"),
        # with k: auto, the sweep's figure, table and JSON
        selection="results/{region}/{sensor}/{method}/k_selection",
    conda:
        "../../envs/geo.yaml"
    log:
        "logs/{region}/{sensor}/{method}/cluster.log",
    threads: workflow.cores
    script:
        "../scripts/cluster.py"
