"""Resolve cross-references to snnedu objects by where they are defined.

The API pages (book/api/) document every object once, in the module that defines it
(``snnedu.neurons.LIF``). Docstrings and chapters, however, name objects the way users import them:
``snnedu.LIF``, ``snnedu.data.DataSplit``, or a bare ``LIF`` inside a module that imports it. Sphinx
cannot find those aliases, and the book is built with ``-n`` (every reference must resolve).

This extension handles Sphinx's ``missing-reference`` event for the Python domain: it imports the
target the way Python would (from the top-level name, or from the module/class the reference sits
in), asks the object where it was defined (``__module__`` + ``__qualname__``, or, for data such as
``EVENT_DTYPE``, the documented module attribute that *is* the object) and links to that entry if
the API pages document it. A method or attribute without an entry of its own (no docstring) links
to the documented class that owns it. A target it cannot import, or that the API pages do not
document, stays unresolved, so a genuinely broken reference still fails the build.
"""
from __future__ import annotations

import importlib
from typing import Any, Iterable, Optional

from sphinx.util.nodes import make_refnode

_MISSING = object()


def _import_path(path: str) -> Any:
    """The object at dotted ``path`` (modules imported as needed), or ``_MISSING``."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001 - not a module path; try a shorter prefix
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                break
        if obj is not _MISSING:
            return obj
    return _MISSING


def _candidates(target: str, modname: Optional[str], clsname: Optional[str]) -> Iterable[str]:
    if target.startswith("snnedu"):
        yield target
    if modname:
        if clsname:
            yield f"{modname}.{clsname}.{target}"
        yield f"{modname}.{target}"


def _defined_name(obj: Any, objects: dict, last: str) -> Optional[str]:
    """Where ``obj`` is documented: its own module and qualified name, else a module attribute."""
    if isinstance(obj, type(importlib)):  # a module
        return obj.__name__ if obj.__name__ in objects else None
    for owner in (getattr(obj, "fget", None), obj):  # properties: the getter knows its class
        mod, qual = getattr(owner, "__module__", None), getattr(owner, "__qualname__", None)
        if isinstance(mod, str) and isinstance(qual, str) and f"{mod}.{qual}" in objects:
            return f"{mod}.{qual}"
    # data (a dtype, a tuple, a string), or an object documented where it is re-exported
    # (snnedu.viz.event_scatter): a documented snnedu attribute with this name that is obj
    for name in objects:
        if name.startswith("snnedu.") and name.rsplit(".", 1)[-1] == last:
            if _import_path(name) is obj:
                return name
    return None


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target or target.startswith("."):
        return None
    domain = env.get_domain("py")
    objects = domain.objects
    name = None
    for path in _candidates(target, node.get("py:module"), node.get("py:class")):
        if not path.startswith("snnedu"):
            continue
        obj = _import_path(path)
        if obj is not _MISSING:
            name = _defined_name(obj, objects, path.rsplit(".", 1)[-1])
        if name is None and node.get("reftype") in ("meth", "attr") and "." in path:
            # a method or attribute without an entry of its own (no docstring, a dataclass field):
            # link to the documented class it belongs to
            owner = _import_path(path.rsplit(".", 1)[0])
            if isinstance(owner, type):
                name = _defined_name(owner, objects, owner.__name__)
        if name is not None:
            break
    if name is None and "." not in target:
        # a bare name the module does not import (mentioned in prose): the one documented snnedu
        # object of that name, if there is exactly one
        kinds = domain.objtypes_for_role(node.get("reftype")) or ()
        found = [n for n in objects if n.startswith("snnedu.") and n.rsplit(".", 1)[-1] == target
                 and objects[n].objtype in kinds and not objects[n].aliased]
        name = found[0] if len(found) == 1 else None
    if name is None:
        return None
    entry = objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
