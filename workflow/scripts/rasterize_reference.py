"""Rule rasterize_reference: the region's reference map on its grid."""

import json

from lithomap.evaluate import rasterize_reference
from lithomap.logs import rule_script
from lithomap.grid import grid_from_dict

smk = snakemake  # noqa: F821 (set by Snakemake)

with rule_script(smk) as log:
    with open(smk.input.stack) as f:
        grid = grid_from_dict(json.load(f)["grid"])
    summary = rasterize_reference(smk.params.reference, grid, smk.output[0])
    log.info("%s: %s reference from %s, %d unit(s) on %d px", summary.path,
             summary.kind, summary.source, len(summary.unit_px),
             sum(summary.unit_px.values()))
