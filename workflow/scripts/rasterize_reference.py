"""Rule rasterize_reference: the region's reference map on its grid."""

from lithomap.evaluate import grid_from_dict, rasterize_reference
from lithomap.logs import rule_script

smk = snakemake  # noqa: F821 (set by Snakemake)

with rule_script(smk) as log:
    summary = rasterize_reference(smk.params.reference,
                                  grid_from_dict(smk.params.grid),
                                  smk.output[0])
    log.info("%s: %s reference from %s, %d unit(s) on %d px", summary.path,
             summary.kind, summary.source, len(summary.unit_px),
             sum(summary.unit_px.values()))
