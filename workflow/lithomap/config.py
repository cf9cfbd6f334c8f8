"""Checking config.yaml against its schema, and resolving each region.

Validation happens once, when the Snakefile loads, and reports every
problem with the config key it concerns (``regions.demo.grid.res_m``).
Defaults come from the schema itself, so the schema is the one place that
states them. A region's ``settings`` override the top-level ``settings``
key by key; reader options per sensor merge the same way.
"""

from __future__ import annotations

import copy
import os

import jsonschema
import yaml


class ConfigError(ValueError):
    """config.yaml (or --config) does not describe a runnable workflow."""


def load_schema(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line per problem: the config key, what is wrong, what to do."""
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return (f"config key {key}: unknown key(s) {', '.join(extra)} "
                f"(misspelt?){hint}")
    if error.validator == "not":
        what = error.schema.get("description", "").strip()
        return f"config key {key}: {error.instance!r} is not allowed: {what}"
    if error.validator == "propertyNames":
        return f"config key {key}: {error.message}"
    if error.validator == "enum":
        return (f"config key {key}: {error.instance!r} is not one of "
                f"{error.validator_value}")
    if (error.validator == "type" and isinstance(error.instance, str)
            and len(error.absolute_path) > 1):
        # snakemake --config 'regions={"r": {"grid": {"res_m": 30}}}'
        # passes nested values on as text.
        return (f"config key {key}: {error.message} (if it was given "
                "with --config: values nested there arrive as text; put "
                "them in a YAML file passed with --configfile)")
    return f"config key {key}: {error.message}"


def _leaf_errors(errors):
    """Errors inside if/then or allOf point at their deepest cause."""
    for error in errors:
        if error.context:
            yield from _leaf_errors(error.context)
        else:
            yield error


def validate(config: dict, schema: dict) -> None:
    """Raise ConfigError naming every key of `config` the schema rejects."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(_leaf_errors(validator.iter_errors(config)),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = sorted({_describe(e) for e in errors})
        raise ConfigError("config is not valid:\n  " + "\n  ".join(lines))
    _check_names(config)


def _check_names(config: dict) -> None:
    """Names that refer to other entries must exist."""
    regions = config["regions"]
    methods = config.get("methods") or {"pca": {"reducer": "pca"}}
    problems = []
    for name in config["run"]:
        if name not in regions:
            problems.append(f"config key run: no region {name!r}; regions "
                            f"are {', '.join(sorted(regions))}")
    for rname, region in regions.items():
        for m in region.get("methods", ["pca"]):
            if m not in methods:
                problems.append(
                    f"config key regions.{rname}.methods: no method {m!r} "
                    f"under top-level methods ({', '.join(sorted(methods))})")
        for sensor in region.get("bands", {}):
            if sensor not in {s["sensor"] for s in region["scenes"]}:
                problems.append(
                    f"config key regions.{rname}.bands.{sensor}: the region "
                    f"has no {sensor} scene")
        problems += _check_region(rname, region, methods)
    problems += _check_settings("settings", config.get("settings", {}))
    if problems:
        raise ConfigError("config is not valid:\n  " + "\n  ".join(problems))


def _check_region(name: str, region: dict, methods: dict) -> list[str]:
    """What the schema cannot say about one region."""
    problems = []
    bbox = region["grid"]["aoi"].get("bbox")
    if bbox and not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        problems.append(
            f"config key regions.{name}.grid.aoi.bbox: {bbox} is not "
            "[left, bottom, right, top] with left < right, bottom < top")
    problems += _check_settings(f"regions.{name}.settings",
                                region.get("settings", {}))
    bands = region.get("bands", {})
    sensors = {s["sensor"] for s in region["scenes"]}
    if region.get("fusion") and len(sensors) < 2:
        problems.append(
            f"config key regions.{name}.fusion: fusion joins the stacks of "
            f"two or more sensors, and the region's scenes are all "
            f"{', '.join(sensors)}; add a scene of another sensor or set "
            "fusion: false")
    if sensors and sensors <= set(bands):
        n_bands = min(len(bands[s]) for s in sensors)
        for m in region.get("methods", ["pca"]):
            size = methods.get(m, {}).get("code_size")
            if size is not None and size > n_bands:
                problems.append(
                    f"config key methods.{m}.code_size: {size} exceeds the "
                    f"{n_bands} bands region {name} gives it; lower it")
    return problems


def _check_settings(key: str, settings: dict) -> list[str]:
    """Ranges that relate two settings."""
    problems = []
    k_range = settings.get("k_range")
    if k_range is not None and not k_range[0] < k_range[1]:
        problems.append(f"config key {key}.k_range: {k_range} needs "
                        "min < max, e.g. [2, 15]")
    elif (k_range is not None and settings.get("k_rule", "elbow") == "elbow"
            and k_range[1] - k_range[0] < 2):
        problems.append(f"config key {key}.k_range: {k_range} gives the "
                        "elbow rule fewer than three values of k; widen it "
                        "or choose another k_rule")
    return problems


def check_paths(config: dict) -> None:
    """Reference files named in config must exist (after paths have been
    made relative to the Snakefile), before any job runs."""
    problems = []
    for name, region in config["regions"].items():
        reference = region.get("reference") or {}
        paths = [("path", reference.get("path"))]
        if isinstance(reference.get("points"), dict):
            paths.append(("points.path", reference["points"].get("path")))
        for key, path in paths:
            if path and not os.path.exists(path):
                problems.append(f"config key regions.{name}.reference.{key}: "
                                f"{path} does not exist")
    if problems:
        raise ConfigError("config is not valid:\n  " + "\n  ".join(problems))


def schema_defaults(schema: dict, node: dict | None = None) -> dict:
    """Default values of an object schema's properties, nested."""
    node = schema if node is None else node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["$defs"][name]
    out = {}
    for key, prop in node.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        if "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        elif prop.get("type") == "object" or "$ref" in prop:
            sub = schema_defaults(schema, prop)
            if sub:
                out[key] = sub
    return out


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(config: dict, schema: dict) -> dict:
    """A copy of a valid `config` with every default filled in.

    Each region gains a complete ``settings`` (schema defaults, then the
    top-level settings, then its own) and ``methods``; each method gains
    its reducer's defaults. Mappings come back with their keys sorted.
    """
    out = copy.deepcopy(config)
    settings_defaults = schema_defaults(schema, {"$ref": "#/$defs/settings"})
    top = _merge(settings_defaults, config.get("settings", {}))
    out["settings"] = top
    out["dask"] = _merge(schema_defaults(schema, schema["properties"]["dask"]),
                         config.get("dask", {}))
    out.setdefault("methods", {"pca": {"reducer": "pca"}})
    for name, method in out["methods"].items():
        out["methods"][name] = _merge(method_defaults(schema, method), method)
    for region in out["regions"].values():
        region["settings"] = _merge(top, region.get("settings", {}))
        region.setdefault("methods", ["pca"])
        region.setdefault("bands", {})
    return _sorted_keys(out)


def _sorted_keys(value):
    """`value` with the keys of every mapping in sorted order (lists keep
    theirs). Snakemake reruns a job when its params differ from the last
    run's, key order included: moving keys around in config.yaml must not
    count as a change."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def method_defaults(schema: dict, method: dict) -> dict:
    """Defaults of the settings of `method`'s reducer kind."""
    for branch in schema["$defs"]["method"].get("allOf", []):
        kind = branch["if"]["properties"]["reducer"]["const"]
        if kind == method.get("reducer"):
            return schema_defaults(schema, branch["then"])
    return {}


FUSED = "fused"
"""Name, in place of a sensor's, of a region's sensors mapped together."""


def sensors(region: dict) -> list[str]:
    """Sensors of a region's scenes, in first-listed order."""
    seen = []
    for scene in region["scenes"]:
        if scene["sensor"] not in seen:
            seen.append(scene["sensor"])
    return seen


def mapped_sensors(region: dict) -> list[str]:
    """Stacks a region maps: its sensors, then `FUSED` with ``fusion``."""
    return sensors(region) + ([FUSED] if region.get("fusion") else [])
