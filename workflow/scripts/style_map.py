"""Rule style_map: the map's QGIS style, attribute table and class CSV,
with the matched reference unit in each label when the map was scored."""

import json

from lithomap.export import units_from_accuracy, write_sidecars
from lithomap.logs import rule_script

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    smk = snakemake  # noqa: F821
    units = None
    accuracy = getattr(smk.input, "accuracy", None)
    if accuracy:
        with open(accuracy, encoding="utf-8") as f:
            units = units_from_accuracy(json.load(f), smk.params.matching)
        log.info("labels from %s (%s matching)", accuracy,
                 smk.params.matching)
    write_sidecars(smk.input.map, units)
