"""Rule make_aster_demo: write the synthetic AST_L1T scene of a demo region.

Params (all optional): ``seed`` (int, 0), ``vnir_px`` (int, 600; a
multiple of 6), ``place`` ("cuprite" or "mutawintji"), ``n_units`` (int,
6). A second output named ``units`` receives the rock-unit codes as a
GeoTIFF on the 30 m SWIR grid, for scoring the demo map.
"""

from lithomap.logs import rule_script
from lithomap.products import aster_fixture

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    params = dict(snakemake.params.items())  # noqa: F821
    options = {key: params[key] for key in ("place", "n_units")
               if key in params}
    path = snakemake.output[0]  # noqa: F821
    scene = aster_fixture.make_l1t(path, seed=int(params.get("seed", 0)),
                                   vnir_px=int(params.get("vnir_px", 600)),
                                   **options)
    log.info("%s: synthetic AST_L1T, %d x %d VNIR px, %d rock units, "
             "UTM zone %d%s, acquired %s", path,
             *scene.reflectance["1"].shape, len(set(scene.units.ravel())),
             scene.zone, "S" if scene.south else "N", scene.acquired)
    units = getattr(snakemake.output, "units", None)  # noqa: F821
    if units:
        aster_fixture.write_units(units, scene)
        log.info("%s: rock-unit codes on the SWIR grid", units)
