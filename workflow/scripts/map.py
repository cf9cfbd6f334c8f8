"""Rule map: encode, assign and smooth every chunk; write the map."""

from lithomap import pipeline
from lithomap.logs import rule_script
from lithomap.stack import write_json

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    summary = pipeline.classify(
        snakemake.input.stack, snakemake.input.model, snakemake.input.kmeans,
        snakemake.params.settings, snakemake.output.map)
    write_json(snakemake.output.summary, summary)
