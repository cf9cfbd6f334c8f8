# Generated test data: synthetic ASTER scenes for the demo region (no real
# ASTER product could be obtained; see the README).


rule make_aster_demo:
    output:
        scene="results/demo_data/aster/{name}.hdf",
        units="results/demo_data/aster/{name}_units.tif",
    params:
        seed=0,
        vnir_px=600,
        place="cuprite",
    log:
        "logs/demo_data/aster/{name}.log",
    conda:
        "../../envs/geo.yaml"
    threads: 1
    resources:
        mem_mb=500,
    script:
        "../scripts/make_aster_demo.py"
