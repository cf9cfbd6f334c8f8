"""Rule evaluate: score one map against the region's gridded reference."""

import numpy as np

from lithomap.evaluate import evaluate_map, write_accuracy
from lithomap.logs import rule_script


def optional_npy(name):
    """The array of input `name`, or None when the rule does not give it."""
    path = getattr(snakemake.input, name, None)  # noqa: F821
    return None if not path else np.load(path)


with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    reference = snakemake.params.reference
    doc = evaluate_map(
        snakemake.input.map, snakemake.input.reference,
        legend=reference.get("legend"), points=reference.get("points"),
        features=optional_npy("features"), labels=optional_npy("labels"),
        run=dict(snakemake.wildcards.items()),
        seed=getattr(snakemake.params, "seed", 0))
    write_accuracy(doc, snakemake.output.accuracy,
                   snakemake.output.confusion, snakemake.output.figure)
