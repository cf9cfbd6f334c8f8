"""Rule reduce: fit scaling and the method's reducer on the sample."""

import json

from lithomap import enrich, pipeline
from lithomap.logs import rule_script
from lithomap.stack import write_json

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    with open(snakemake.input.stack) as f:
        stack = json.load(f)
    bands = enrich.layer_names(stack["bands"], stack["sensor"],
                               snakemake.params.settings)
    summary = pipeline.fit_features(
        snakemake.input.sample, bands, snakemake.params.method,
        snakemake.params.settings, snakemake.output.model,
        snakemake.output.features)
    write_json(snakemake.output.summary, summary)
