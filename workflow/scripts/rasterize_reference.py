"""Rule rasterize_reference: the region's reference map on its grid."""

from lithomap.evaluate import grid_from_dict, rasterize_reference
from lithomap.logs import rule_script

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    grid = grid_from_dict(snakemake.params.grid)
    summary = rasterize_reference(snakemake.params.reference, grid,
                                  snakemake.output[0])
    log.info("%s: %s reference from %s, %d unit(s)", summary.path,
             summary.kind, summary.source, len(summary.unit_px))
