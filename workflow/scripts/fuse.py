"""Rule fuse: the stacks of a region's sensors joined into one."""

from lithomap.logs import rule_script
from lithomap.stack import fuse_stacks, write_json

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    key = f"regions.{snakemake.wildcards.region}.fusion"
    summary = fuse_stacks(list(snakemake.input), snakemake.output.stack, key)
    write_json(snakemake.output.summary, summary)
