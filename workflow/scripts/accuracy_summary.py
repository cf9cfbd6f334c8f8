"""Rule accuracy_summary: every map of a region side by side, best first."""

from lithomap.evaluate import summarise
from lithomap.logs import rule_script

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    table = summarise(list(snakemake.input), snakemake.output.csv,
                      snakemake.output.md)
    log.info("ranked %d map(s)", len(table))
