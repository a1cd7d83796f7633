"""Region packs that extend a base pack: override values without copying the pack.

A pack whose ``pack`` section says ``extends: value_chain.yaml`` holds only
what differs from its base: parameter values, thresholds, tier settings.
``overlay_document`` merges the two into one document that the pack loader
checks like any other, so the merged pack passes exactly the checks a
hand-copied one would.

Merging rules, chosen so that a typo can never add a silent new rule:
- mappings merge key by key, lists of mappings merge by their ``id`` or
  ``name``; any other value replaces the base's value;
- an override may only change what the base has: a key, id or name the base
  lacks is an error that names the nearest one;
- the ``pack`` section is the extending pack's own (id, version, title), with
  the base's ``subject`` and ``source`` unless it gives its own.

Positions stay true: a value that comes from the extending file is located
there, everything else in the base file, so an error or a trail record names
the file that holds the value. The merged digest covers both files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import yamlsafe
from .errors import ErrorList, Location, PackError, did_you_mean

MAX_DEPTH = 5  # a region pack may extend a pack that extends another, up to this depth


class OverlayDocument:
    """The merged data of a base and an extending document, with each value's true position."""

    def __init__(self, base: Any, top: yamlsafe.Document, data: Any,
                 origins: dict[tuple, tuple]) -> None:
        self.base, self.top, self.data = base, top, data
        self.origins = origins  # merged path -> path in the extending document
        self.path = top.path
        self.text = top.text
        self.sha256 = hashlib.sha256(f"{base.sha256}\n{top.sha256}".encode("ascii")).hexdigest()

    def _source(self, path: tuple) -> tuple[Any, tuple]:
        path = tuple(path)
        probe = path
        while True:
            if probe in self.origins:
                return self.top, (*self.origins[probe], *path[len(probe):])
            if not probe:
                return self.base, path
            probe = probe[:-1]

    def locate(self, path: tuple) -> Location:
        doc, inner = self._source(path)
        return doc.locate(inner)

    def locate_key(self, path: tuple) -> Location:
        doc, inner = self._source(path)
        return doc.locate_key(inner)

    def scalar_locator(self, path: tuple) -> Callable[[int], Location]:
        doc, inner = self._source(path)
        return doc.scalar_locator(inner)


def extends_of(doc: yamlsafe.Document) -> str | None:
    """The ``pack.extends`` value of a document, if it has one."""
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("pack"), dict):
        value = data["pack"].get("extends")
        return value if isinstance(value, str) else None
    return None


def overlay_document(doc: yamlsafe.Document, *, depth: int = 0) -> Any:
    """Merge ``doc`` onto the pack it extends (recursively); raise ErrorList on bad overrides."""
    target = extends_of(doc)
    assert target is not None
    where = doc.locate(("pack", "extends"))
    if depth >= MAX_DEPTH:
        raise ErrorList([PackError(f"packs extend each other more than {MAX_DEPTH} deep "
                                   "(a loop?)", where)])
    from .files import display_path

    base_path = Path(os.path.dirname(os.path.abspath(doc.path))) / target
    if not base_path.is_file():
        raise ErrorList([PackError(f"extends '{target}', but there is no such file next to "
                                   "this pack", where)])
    base: Any = yamlsafe.load(base_path, display=display_path(base_path))
    if extends_of(base) is not None:
        base = overlay_document(base, depth=depth + 1)
    if not isinstance(base.data, dict):
        raise ErrorList([PackError(f"extends '{target}', which is not a pack", where)])
    origins: dict[tuple, tuple] = {}
    errors: list[PackError] = []
    merged = dict(base.data)
    for key, value in doc.data.items():
        if key == "pack":
            continue
        if key not in base.data:
            errors.append(PackError(
                f"overrides '{key}', which the base pack {target} does not have",
                doc.locate_key((key,)), did_you_mean(key, base.data)))
            continue
        merged[key] = _merge(base.data[key], value, (key,), (key,), doc, origins, errors,
                             target)
    meta = dict(base.data.get("pack", {}))
    own = doc.data.get("pack", {})
    for key, value in own.items():
        if key != "extends":
            meta[key] = value
            origins[("pack", key)] = ("pack", key)
    meta.pop("extends", None)
    merged["pack"] = meta
    if errors:
        raise ErrorList(errors)
    return OverlayDocument(base, doc, merged, origins)


def _merge(base: Any, top: Any, path: tuple, top_path: tuple, doc: yamlsafe.Document,
           origins: dict[tuple, tuple], errors: list[PackError], target: str) -> Any:
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for key, value in top.items():
            if key not in base:
                errors.append(PackError(
                    f"overrides '{'.'.join(map(str, (*path, key)))}', which the base pack "
                    f"{target} does not have", doc.locate_key((*top_path, key)),
                    did_you_mean(str(key), [str(k) for k in base])))
                continue
            out[key] = _merge(base[key], value, (*path, key), (*top_path, key), doc, origins,
                              errors, target)
        return out
    if isinstance(base, list) and isinstance(top, list) and _keyed(base) and _keyed(top):
        out = list(base)
        index = {_key_of(item): i for i, item in enumerate(base)}
        for j, item in enumerate(top):
            key = _key_of(item)
            if key not in index:
                errors.append(PackError(
                    f"overrides '{key}' in {'.'.join(map(str, path))}, which the base pack "
                    f"{target} does not have", doc.locate((*top_path, j)),
                    did_you_mean(str(key), [str(k) for k in index])))
                continue
            i = index[key]
            origins[(*path, i)] = (*top_path, j)  # the overridden item is located in the top
            out[i] = _merge(base[i], item, (*path, i), (*top_path, j), doc, origins, errors,
                            target)
        return out
    origins[path] = top_path
    return top


def _keyed(items: list) -> bool:
    return bool(items) and all(isinstance(i, dict) and ("id" in i or "name" in i)
                               for i in items)


def _key_of(item: dict) -> Any:
    return item.get("id", item.get("name"))
