"""Rule style_map: the map's QGIS style, attribute table and class CSV,
with the matched reference unit in each label when the map was scored."""

import json

from lithomap.export import units_from_accuracy, write_sidecars
from lithomap.logs import rule_script

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    smk = snakemake  # noqa: F821
    # An input function gives a list (empty for a region without a
    # reference map), a plain string gives a string.
    accuracy = getattr(smk.input, "accuracy", None) or []
    accuracy = [accuracy] if isinstance(accuracy, str) else list(accuracy)
    units = None
    if accuracy:
        with open(accuracy[0], encoding="utf-8") as f:
            units = units_from_accuracy(json.load(f), smk.params.matching)
        log.info("labels from %s (%s matching)", accuracy[0],
                 smk.params.matching)
    write_sidecars(smk.input.map, units)
