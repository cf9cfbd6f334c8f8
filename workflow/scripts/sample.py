"""Rule sample: the seeded sample of usable pixels models are fitted on."""

from lithomap import pipeline
from lithomap.logs import rule_script
from lithomap.stack import write_json

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    summary = pipeline.sample(snakemake.input[0], snakemake.output.sample,
                              snakemake.params.settings)
    write_json(snakemake.output.summary, summary)
