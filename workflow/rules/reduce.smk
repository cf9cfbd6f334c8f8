# Fit scaling and a reducer on the pixel sample, and encode the sample.


rule reduce:
    input:
        sample="results/{region}/{sensor}/sample.npy",
        stack="results/{region}/{sensor}/stack.json",
    output:
        model=directory("results/{region}/{sensor}/{method}/model"),
        features="results/{region}/{sensor}/{method}/features_sample.npy",
        summary="results/{region}/{sensor}/{method}/reduce.json",
    params:
        method=method_cfg,
        settings=stage_settings("reduce"),
    conda:
        "../../envs/keras.yaml"
    log:
        "logs/{region}/{sensor}/{method}/reduce.log",
    benchmark:
        "results/{region}/benchmarks/{sensor}_{method}_reduce.tsv"
    threads: workflow.cores
    script:
        "../scripts/reduce.py"
