"""Rule stack: scenes of one sensor onto the region grid, as Zarr."""

from lithomap.logs import rule_script
from lithomap.stack import build_stack, write_json

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    region = snakemake.params.region
    key = f"regions.{snakemake.wildcards.region}"
    summary = build_stack(region, snakemake.wildcards.sensor,
                          snakemake.output.stack, key)
    write_json(snakemake.output.summary, summary)
