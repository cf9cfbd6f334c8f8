"""config.yaml validation: errors name the key; defaults fill in."""

import copy

import pytest
import yaml

from conftest import REPO
from lithomap.config import ConfigError, load_schema, resolve, validate

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")


@pytest.fixture
def config():
    with open(REPO / "config.yaml") as f:
        return yaml.safe_load(f)


def test_shipped_config_is_valid(config):
    validate(config, SCHEMA)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["regions"]["western_sahara"]["grid"].update(rez=10),
     r"regions\.western_sahara\.grid: unknown key\(s\) rez.*allowed keys: "
     r"aoi, crs, res_m"),
    (lambda c: c["settings"].update(seeed=1),
     r"config key settings: unknown key\(s\) seeed"),
    (lambda c: c.update(run=["atlantis"]),
     r"config key run: no region 'atlantis'"),
    (lambda c: c["regions"]["western_sahara"]["grid"].update(res_m=-5),
     r"regions\.western_sahara\.grid\.res_m: -5 is less than or equal"),
    (lambda c: c["regions"]["western_sahara"]["scenes"][0].update(
        sensor="modis"), r"scenes\.0\.sensor: 'modis' is not one of"),
    (lambda c: c["settings"].update(majority_window_px=4),
     r"settings\.majority_window_px: 4 is not allowed.*\(odd\)"),
    (lambda c: c["regions"]["western_sahara"].update(methods=["umap"]),
     r"methods: no method 'umap'"),
    (lambda c: c["methods"]["pca"].update(n_compnents=3),
     r"methods\.pca: unknown key\(s\) n_compnents"),
    (lambda c: c["regions"]["western_sahara"]["grid"]["aoi"].update(
        bbox=[309780, 2690220, 199980, 2800020]),
     r"grid\.aoi\.bbox: .* is not \[left, bottom, right, top\]"),
    (lambda c: c["settings"].update(k="auto", k_range=[5, 3]),
     r"settings\.k_range: \[5, 3\] needs min < max"),
    (lambda c: c["settings"].update(k="auto", k_range=[2, 3],
                                    k_rule="elbow"),
     r"settings\.k_range: .* fewer than three values of k"),
    (lambda c: c["methods"]["ae"].update(code_size=12),
     r"methods\.ae\.code_size: 12 exceeds the 10 bands region "
     r"western_sahara"),
    (lambda c: c["regions"]["western_sahara"]["bands"].update(
        sentinel2=["B02", "B03", "B02"]),
     r"bands\.sentinel2: .* has non-unique elements"),
    (lambda c: c["regions"]["western_sahara"].update(fusion=True),
     r"regions\.western_sahara\.fusion: fusion joins the stacks of two or "
     r"more sensors, and the region's scenes are all sentinel2"),
    (lambda c: c["regions"]["western_sahara"]["grid"].update(res_m="30"),
     r"regions\.western_sahara\.grid\.res_m: '30' is not of type 'number' "
     r"\(if it was given with --config: .* --configfile\)"),
], ids=["misspelt-grid-key", "misspelt-setting", "unknown-region",
        "negative-res", "unknown-sensor", "even-window", "unknown-method",
        "misspelt-method-key", "bbox-swapped", "k-range-reversed",
        "k-range-short-for-elbow", "code-size-over-bands",
        "repeated-band", "fusion-of-one-sensor", "text-for-number"])
def test_bad_config_names_the_key(config, edit, match):
    edit(config)
    with pytest.raises(ConfigError, match=match):
        validate(config, SCHEMA)


def test_missing_reference_file_is_named(config, tmp_path):
    from lithomap.config import check_paths
    config["regions"]["western_sahara"]["reference"] = {
        "path": str(tmp_path / "units.gpkg"), "unit_column": "unit"}
    with pytest.raises(ConfigError, match=r"regions\.western_sahara\."
                       r"reference\.path: .*units\.gpkg does not exist"):
        check_paths(config)


def test_defaults_and_region_overrides(config):
    """Schema defaults < top-level settings < the region's settings."""
    config = copy.deepcopy(config)
    del config["settings"]["k"]
    config["regions"]["western_sahara"]["settings"] = {"k": 5}
    validate(config, SCHEMA)
    out = resolve(config, SCHEMA)
    region = out["regions"]["western_sahara"]["settings"]
    assert region["k"] == 5
    assert out["settings"]["k"] == "auto"  # the schema's default
    assert region["resampling"] == "auto"
    assert out["methods"]["pca"]["whiten"] is False
