"""Open a lithomap map in QGIS, headless, and report what QGIS sees.

Run with the Python that has PyQGIS (Debian: /usr/bin/python3 with the
python3-qgis package), not the project's virtualenv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py \
        results/REGION/SENSOR/METHOD/map.tif /tmp/map.png [--expect CSV]

It loads the map as QGIS would when a user drags it in (the ``.qml``
beside it is the default style), then loads that style explicitly, renders
the whole layer to the PNG on a transparent background and prints one JSON
object on stdout: the renderer type and its classes (value, colour, alpha,
label), whether the default style was applied on opening, the layer's
nodata handling, the GDAL raster attribute table when GDAL's Python
bindings are there, and the rendered image size. With ``--expect`` (the
map's ``_classes.csv``) it also checks the classes against it and exits
with status 1 and one line per difference when they disagree.

Test helper of tests/test_qgis.py; it imports nothing from lithomap.
"""

import argparse
import csv
import json
import os
import sys


def _qgis():
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    return app


def _palette(layer):
    renderer = layer.renderer()
    out = {"type": renderer.type(), "classes": []}
    if renderer.type() == "paletted":
        for c in renderer.classes():
            out["classes"].append({
                "value": int(c.value), "colour": c.color.name(),
                "alpha": c.color.alpha(), "label": c.label})
    return out


def _render(layer, png, scale):
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    width = max(1, round(layer.width() * scale))
    height = max(1, round(layer.height() * scale))
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    if not image.save(png, "PNG"):
        raise SystemExit(f"{png}: QGIS could not save the rendered image")
    return {"png": png, "width": image.width(), "height": image.height()}


def _gdal_rat(path):
    """The attribute table as GDAL reads it, or None without bindings."""
    try:
        from osgeo import gdal
    except ImportError:
        return None
    gdal.UseExceptions()
    dataset = gdal.Open(path)  # the band is only valid while this lives
    band = dataset.GetRasterBand(1)
    rat = band.GetDefaultRAT()
    if rat is None:
        return {"columns": [], "rows": []}
    columns = [rat.GetNameOfCol(i) for i in range(rat.GetColumnCount())]
    rows = [[rat.GetValueAsString(r, i) for i in range(len(columns))]
            for r in range(rat.GetRowCount())]
    return {"columns": columns, "rows": rows,
            "thematic": rat.GetTableType() == gdal.GRTT_THEMATIC,
            "description": band.GetDescription()}


def _differences(classes, expect_csv):
    with open(expect_csv, newline="", encoding="utf-8") as f:
        expected = {int(r["value"]): r for r in csv.DictReader(f)}
    seen = {c["value"]: c for c in classes}
    problems = []
    if sorted(seen) != sorted(expected):
        problems.append(f"classes {sorted(seen)} != expected "
                        f"{sorted(expected)}")
    for value, row in expected.items():
        got = seen.get(value)
        if got is None:
            continue
        if got["colour"].lower() != row["colour"].lower():
            problems.append(f"class {value}: colour {got['colour']} != "
                            f"{row['colour']}")
        if got["label"] != row["label"]:
            problems.append(f"class {value}: label {got['label']!r} != "
                            f"{row['label']!r}")
    return problems


def _inspect(path, png, scale):
    """What QGIS makes of map `path`; renders it to `png`."""
    from qgis.core import Qgis, QgsRasterLayer

    layer = QgsRasterLayer(path, "map", "gdal")
    if not layer.isValid():
        raise SystemExit(f"{path}: QGIS cannot open it: "
                         f"{layer.error().summary()}")
    on_open = _palette(layer)
    qml = os.path.splitext(path)[0] + ".qml"
    message, loaded = layer.loadNamedStyle(qml)
    if not loaded:
        raise SystemExit(f"{qml}: QGIS did not load the style: {message}")
    styled = _palette(layer)
    provider = layer.dataProvider()
    return {
        "qgis_version": Qgis.QGIS_VERSION,
        "renderer": styled["type"],
        "classes": styled["classes"],
        "default_style_applied": on_open == styled,
        "nodata": {"has": provider.sourceHasNoDataValue(1),
                   "value": provider.sourceNoDataValue(1),
                   "used": provider.useSourceNoDataValue(1)},
        "crs": layer.crs().authid(),
        "render": _render(layer, png, scale),
        "gdal_rat": _gdal_rat(path),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("map")
    parser.add_argument("png")
    parser.add_argument("--expect", help="the map's _classes.csv")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="rendered px per map px (default 0.5)")
    args = parser.parse_args(argv)

    app = _qgis()
    try:
        report = _inspect(args.map, args.png, args.scale)
    finally:
        # Layers must be gone before QGIS shuts down, or Python crashes
        # on exit; _inspect has returned, so its layer is.
        app.exitQgis()
    print(json.dumps(report))
    if args.expect:
        problems = _differences(report["classes"], args.expect)
        if report["renderer"] != "paletted":
            problems.insert(0, f"renderer is {report['renderer']!r}, "
                               "expected 'paletted'")
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
