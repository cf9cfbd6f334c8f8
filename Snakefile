# lithomap: unsupervised geological maps from multispectral scenes.
# This file only sets up: config and its validation, the rules, `all`.

import os

from snakemake.utils import min_version

from lithomap import config as lmconfig

min_version("8.0")


configfile: "config.yaml"


SCHEMA = lmconfig.load_schema(
    os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"))
lmconfig.validate(config, SCHEMA)
CONFIG = lmconfig.resolve(config, SCHEMA)


def rel(path):
    """A config path, relative to the folder holding this Snakefile, except
    paths under results/, which this workflow makes in its working folder."""
    if os.path.isabs(path) or path.startswith("results/"):
        return path
    return os.path.join(workflow.basedir, path)


for _region in CONFIG["regions"].values():
    for _scene in _region["scenes"]:
        _scene["path"] = rel(os.path.normpath(_scene["path"]))
    _reference = _region.get("reference") or {}
    for _key in ("path", "legend"):
        if isinstance(_reference.get(_key), str):
            _reference[_key] = rel(_reference[_key])
    if isinstance(_reference.get("points"), dict):
        _reference["points"]["path"] = rel(_reference["points"]["path"])
    if "vector" in _region["grid"]["aoi"]:
        _region["grid"]["aoi"]["vector"] = rel(_region["grid"]["aoi"]["vector"])
lmconfig.check_paths(CONFIG)


wildcard_constraints:
    region="[A-Za-z0-9_]+",
    sensor="[A-Za-z0-9_]+",
    method="[A-Za-z0-9_]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/demo_data.smk"
include: "workflow/rules/stack.smk"
include: "workflow/rules/reduce.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/map.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
