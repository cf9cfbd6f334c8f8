"""Rule evaluate: score one map against the region's gridded reference."""

import numpy as np
from lithomap.evaluate import evaluate_map, write_accuracy
from lithomap.logs import rule_script

smk = snakemake  # noqa: F821 (set by Snakemake)


def optional_npy(name):
    """The array of input `name`, or None when the rule does not give it."""
    path = getattr(smk.input, name, None)
    return None if not path else np.load(path)


with rule_script(smk) as log:
    reference = smk.params.reference
    doc = evaluate_map(
        smk.input.map, smk.input.reference,
        legend=reference.get("legend"), points=reference.get("points"),
        features=optional_npy("features"), labels=optional_npy("labels"),
        run=dict(smk.wildcards.items()),
        seed=getattr(smk.params, "seed", 0))
    write_accuracy(doc, smk.output.accuracy, smk.output.confusion,
                   smk.output.figure)
