"""Landsat Collection 2 product metadata (the "MTL" file).

USGS ships the same metadata three ways: ``*_MTL.txt`` (ODL, ``GROUP = ...``
blocks of ``KEY = VALUE`` lines), ``*_MTL.json`` and ``*_MTL.xml``. All three
hold one top group, ``LANDSAT_METADATA_FILE``, of named groups of keys.
`parse_mtl` reads any of them into an `MTL`: values stay text, and the
accessors convert them and raise a `ProductError` naming the file and the key
when a value is missing or malformed.

Collection 1 metadata (top group ``L1_METADATA_FILE``, other group and key
names) is refused with a message saying so: the Collection 1 archive was
retired by USGS at the end of 2022 and its products must be re-downloaded.
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from lithomap.products.base import ProductError

log = logging.getLogger(__name__)

TOP_GROUP = "LANDSAT_METADATA_FILE"
"""Outermost group of every Collection 2 MTL."""

COLLECTION1_TOP_GROUP = "L1_METADATA_FILE"
"""Outermost group of a Collection 1 Level-1 MTL."""

MTL_SUFFIXES = ("_MTL.txt", "_MTL.json", "_MTL.xml")
"""Metadata file endings, in the order a reader prefers them."""

_ODL_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class MTL:
    """Parsed Collection 2 metadata: ``{group: {key: text}}``."""

    name: str
    """File name, for messages."""
    groups: dict
    """Keys of each group below ``LANDSAT_METADATA_FILE``, values as text."""

    def has(self, group: str, key: str) -> bool:
        """Whether `group` holds `key`."""
        return key in self.groups.get(group, {})

    def text(self, group: str, key: str) -> str:
        """Value of `key` in `group`, as text; ProductError when absent."""
        try:
            return self.groups[group][key]
        except KeyError:
            where = (f"no {key} in group {group}" if group in self.groups
                     else f"no group {group} (looking for {key})")
            raise ProductError(
                f"{self.name}: {where}; expected a complete Landsat "
                "Collection 2 MTL file. Re-download the product from USGS "
                "if the file was edited or cut short") from None

    def number(self, group: str, key: str) -> float:
        """Value of `key` in `group` as a float; ProductError otherwise."""
        value = self.text(group, key)
        try:
            return float(value)
        except ValueError:
            raise ProductError(
                f"{self.name}: {group}.{key} is {value!r}, expected a "
                "number") from None

    def optional_number(self, group: str, key: str) -> float | None:
        """Value of `key` as a float, or None when the MTL does not give it."""
        if not self.has(group, key):
            return None
        return self.number(group, key)


def parse_mtl(name: str, content: str | bytes) -> MTL:
    """Parse the text of an MTL file; the format follows the name's ending.

    Parameters
    ----------
    name : str
        File name (or path) of the metadata file; its ending (``.txt``,
        ``.json``, ``.xml``) picks the parser, and it names the file in
        error messages.
    content : str or bytes
        The whole file.

    Returns
    -------
    MTL
        The groups of the file.

    Raises
    ------
    ProductError
        If the file cannot be parsed, is a Collection 1 MTL, or has no
        ``LANDSAT_METADATA_FILE`` group.
    """
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    lower = name.lower()
    if lower.endswith(".json"):
        top = _parse_json(name, content)
    elif lower.endswith(".xml"):
        top = _parse_xml(name, content)
    else:
        top = _parse_odl(name, content)
    log.debug("%s: %d metadata groups", name, len(top))
    return MTL(name, top)


def _refuse_top(name: str, found: str):
    """ProductError for a file whose outermost group is `found`."""
    if found == COLLECTION1_TOP_GROUP:
        raise ProductError(
            f"{name}: this is a Collection 1 MTL ({COLLECTION1_TOP_GROUP}); "
            "lithomap reads Landsat Collection 2 products only. Download "
            "the scene again as Collection 2 (Level-1 or Level-2) from "
            "EarthExplorer")
    raise ProductError(
        f"{name}: outermost group is {found or 'missing'}, expected "
        f"{TOP_GROUP}; not a Landsat Collection 2 MTL file")


def _parse_odl(name: str, content: str) -> dict:
    """Groups of an ODL (``.txt``) MTL."""
    stack: list[str] = []
    groups: dict[str, dict[str, str]] = {}
    top = ""
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip() or line.strip() == "END":
            continue
        match = _ODL_LINE.match(line)
        if match is None:
            raise ProductError(f"{name}, line {number}: {line.strip()!r} is "
                               "not a 'KEY = VALUE' line of an MTL file")
        key, value = match.groups()
        if key == "GROUP":
            if not stack:
                top = value
            stack.append(value)
            groups.setdefault(value, {})
        elif key == "END_GROUP":
            if not stack or stack[-1] != value:
                raise ProductError(f"{name}, line {number}: END_GROUP = "
                                   f"{value} closes no open group")
            stack.pop()
        elif stack:
            groups[stack[-1]][key] = value.strip('"')
    if top != TOP_GROUP:
        _refuse_top(name, top)
    groups.pop(TOP_GROUP, None)
    return groups


def _parse_json(name: str, content: str) -> dict:
    """Groups of a ``.json`` MTL."""
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ProductError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or TOP_GROUP not in data:
        found = next(iter(data), "") if isinstance(data, dict) else ""
        _refuse_top(name, found)
    return {group: {k: str(v) for k, v in keys.items()}
            for group, keys in data[TOP_GROUP].items()
            if isinstance(keys, dict)}


def _parse_xml(name: str, content: str) -> dict:
    """Groups of a ``.xml`` MTL."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise ProductError(f"{name}: not valid XML ({exc})") from exc
    if root.tag != TOP_GROUP:
        _refuse_top(name, root.tag)
    return {group.tag: {item.tag: (item.text or "").strip()
                        for item in group}
            for group in root}
