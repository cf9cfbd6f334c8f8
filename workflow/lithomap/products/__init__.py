"""Readers that turn provider products into `Product` objects.

Each reader module exposes ``open_product(path, bands=None, **options)``
returning a `Product` with the bands asked for (its ``DEFAULT_BANDS`` when
`bands` is None), and ``DEFAULT_BANDS``. `open_product` here picks the
reader by the sensor name used in config.
"""

from __future__ import annotations

import importlib
import os

from lithomap.products.base import ProductError, Product

READERS = {
    "sentinel2": "lithomap.products.sentinel2",
    "landsat": "lithomap.products.landsat",
    "aster": "lithomap.products.aster",
    "geotiff": "lithomap.products.geotiff",
}
"""Reader module by sensor name (the ``sensor`` of a scene in config)."""


def reader(sensor: str):
    """The reader module for `sensor`."""
    if sensor not in READERS:
        raise ProductError(f"sensor: expected one of {sorted(READERS)}. "
                           f"Received: {sensor!r}")
    return importlib.import_module(READERS[sensor])


def open_product(sensor: str, path: str, bands=None, **options) -> Product:
    """Open the product at `path` with the reader for `sensor`."""
    if not os.path.exists(path):
        raise ProductError(
            f"{path}: no such file or folder; check the scene's 'path' in "
            "config.yaml (relative paths start from the folder holding the "
            "Snakefile)")
    return reader(sensor).open_product(path, bands, **options)


__all__ = ["open_product", "reader", "READERS", "Product", "ProductError"]
