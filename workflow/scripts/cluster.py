"""Rule cluster: k-means on the encoded sample (k chosen if auto)."""

from lithomap import pipeline
from lithomap.logs import rule_script
from lithomap.stack import write_json

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    summary = pipeline.fit_clusters(
        snakemake.input.features, snakemake.params.settings,
        snakemake.output.kmeans, snakemake.output.labels,
        snakemake.params.selection)
    write_json(snakemake.output.summary, summary)
