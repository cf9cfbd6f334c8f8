"""Rule summary: one JSON per region with every stage's figures."""

import json
import os

from lithomap.logs import rule_script
from lithomap.stack import write_json


def load(path):
    with open(path) as f:
        return json.load(f)


with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    region = snakemake.wildcards.region
    out = {"region": region, "maps": []}
    for sensor, method in snakemake.params.runs:
        base = os.path.join("results", region, sensor)
        stack = load(os.path.join(base, "stack.json"))
        entry = {"sensor": sensor, "method": method,
                 "map": os.path.join(base, method, "map.tif"),
                 "n_pixels": stack["n_pixels"],
                 "n_usable": stack["n_usable"],
                 "scenes": [s["scene_id"] for s in stack["scenes"]],
                 "seconds": {"stack": stack["seconds"]}}
        entry["n_sample"] = load(os.path.join(base, "sample.json"))["n_sample"]
        entry["seconds"]["sample"] = load(
            os.path.join(base, "sample.json"))["seconds"]
        for stage in ("reduce", "cluster", "map"):
            stage_out = load(os.path.join(base, method, f"{stage}.json"))
            entry["seconds"][stage] = stage_out.pop("seconds")
            entry.update(stage_out)
        out["maps"].append(entry)
    write_json(snakemake.output[0], out)
