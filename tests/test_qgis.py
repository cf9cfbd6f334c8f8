"""A map opens styled in real QGIS (PyQGIS, headless).

PyQGIS lives in Debian's Python (/usr/bin/python3 with python3-qgis), not
in the project's virtualenv, so tests/qgis_check.py runs there as a
subprocess and reports what QGIS sees as JSON. The test is skipped, with
the reason, only when that Python cannot import qgis; .ci/run installs
QGIS and sets LITHOMAP_REQUIRE_QGIS=1, so that in CI it runs or fails.
"""

import io
import json
import os
import subprocess
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from affine import Affine
from lithomap import export
from lithomap.products.base import Georef
from PIL import Image
from rasterio.crs import CRS

QGIS_PYTHON = os.environ.get("LITHOMAP_QGIS_PYTHON", "/usr/bin/python3")
CHECK = Path(__file__).with_name("qgis_check.py")
K = 6
UNITS = {1: "Granite", 2: "Basalt", 4: "Schist"}


def qgis_env(tmp_path) -> dict:
    """Environment of Debian's Python: headless Qt, none of the venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime),
               HOME=str(tmp_path))
    return env


def missing(reason: str) -> None:
    """Skip; fail instead where CI asks for QGIS (LITHOMAP_REQUIRE_QGIS=1),
    so that a broken install cannot pass as a skip."""
    if os.environ.get("LITHOMAP_REQUIRE_QGIS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def qgis_python(tmp_path_factory):
    """Debian's Python if it imports qgis; else skip, saying why."""
    if not os.path.exists(QGIS_PYTHON):
        missing(f"{QGIS_PYTHON} not found: install Debian's python3 and "
                "python3-qgis to run the QGIS test")
    probe = subprocess.run(
        [QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True,
        text=True, timeout=120, check=False,
        env=qgis_env(tmp_path_factory.mktemp("q")))
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        missing(f"{QGIS_PYTHON} cannot import qgis ({last}): apt-get "
                "install -y --no-install-recommends python3-qgis "
                "qgis-providers")
    return QGIS_PYTHON


@pytest.fixture(scope="module")
def styled_map(tmp_path_factory):
    """A 6-class map with a nodata band on top, named after three units."""
    rng = np.random.default_rng(3)
    blocks = rng.permutation(np.repeat(np.arange(1, K + 1), 4))
    labels = np.repeat(np.repeat(blocks.reshape(4, 6), 60, 0), 50, 1)
    labels[:40] = 0
    labels = labels.astype(np.uint8)
    grid = Georef(CRS.from_epsg(32629),
                  Affine(20, 0, 500000, 0, -20, 3000000), 300, 240)
    path = str(tmp_path_factory.mktemp("qgis") / "map.tif")
    export.write_map(da.from_array(labels, chunks=128), grid, path, K,
                     units=UNITS)
    return path, labels


@pytest.fixture(scope="module")
def seen(qgis_python, styled_map, tmp_path_factory):
    """What QGIS reports, and the PNG it rendered at full size."""
    path, _ = styled_map
    tmp = tmp_path_factory.mktemp("render")
    png = tmp / "render.png"
    csv_path = export.sidecar_paths(path)["csv"]
    run = subprocess.run(
        [qgis_python, str(CHECK), path, str(png), "--expect", csv_path,
         "--scale", "1"],
        capture_output=True, text=True, timeout=300, check=False,
        env=qgis_env(tmp))
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1]), png


def test_qgis_applies_the_style_beside_the_map(seen, styled_map):
    """QGIS opens the map with the paletted renderer, the .qml's colours
    and labels, without being told about the .qml."""
    report, _ = seen
    rows = export.read_class_csv(
        export.sidecar_paths(styled_map[0])["csv"])
    assert report["renderer"] == "paletted"
    assert report["default_style_applied"] is True
    assert [(c["value"], c["colour"], c["label"], c["alpha"])
            for c in report["classes"]] == [
        (r["value"], r["colour"], r["label"], 255) for r in rows]
    assert report["classes"][0]["label"] == "Granite (cluster 1)"
    assert report["classes"][2]["label"] == "cluster 3"


def test_qgis_sees_nodata_zero(seen):
    report, _ = seen
    assert report["nodata"] == {"has": True, "value": 0.0, "used": True}
    assert report["crs"] == "EPSG:32629"


def test_gdal_reads_the_attribute_table(seen, styled_map):
    """GDAL (as QGIS 3.30+ uses it) finds a thematic RAT whose counts are
    the map's."""
    report, _ = seen
    rat = report["gdal_rat"]
    if rat is None:
        pytest.skip("Debian's python3-gdal is missing: RAT not checked")
    counts = np.bincount(styled_map[1].ravel(), minlength=K + 1)
    assert rat["thematic"] is True
    col = rat["columns"].index("count")
    assert [int(r[col]) for r in rat["rows"]] == counts[1:].tolist()
    assert rat["rows"][3][rat["columns"].index("unit")] == "Schist"


def test_rendered_map_shows_the_classes_and_clear_nodata(seen, styled_map):
    """The rendered image has the map's size, nodata rows fully
    transparent, and elsewhere exactly the class colours of the pixels."""
    report, png = seen
    _, labels = styled_map
    image = np.asarray(Image.open(io.BytesIO(png.read_bytes()))
                       .convert("RGBA"))
    assert image.shape == (240, 300, 4)
    assert report["render"]["width"] == 300
    assert image[:40, :, 3].max() == 0, "nodata must be transparent"
    body = image[40:]
    assert body[..., 3].min() == 255
    colours = {c["value"]: c["colour"] for c in report["classes"]}
    distinct = {tuple(p) for p in body[..., :3].reshape(-1, 3)}
    assert len(distinct) == K
    # Compare away from block edges, where a half-pixel shift could land.
    for y in range(70, 240, 60):
        for x in range(25, 300, 50):
            value = labels[y, x]
            rgb = "#{:02x}{:02x}{:02x}".format(*image[y, x, :3])
            assert rgb == colours[value], (y, x, value)
