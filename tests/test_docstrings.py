"""Every public class documents every constructor parameter.

For each class exported by ``snnedu.__all__`` or ``snnedu.data.__all__``, each named parameter of its
``__init__`` (not ``self``, ``*args`` or ``**kwargs``) must have its own entry in an ``Args:`` (or
``Keyword Args:``) section of the class docstring, or of an ``__init__`` docstring the class defines
itself, in the Google / napoleon form the API reference renders::

    Args:
        name (type): what it means.

that is: the name, its type in parentheses and a description (on the same line or indented below).
The class docstring is what the book's API pages show, so that is where the entries belong.
"""
from __future__ import annotations

import inspect
import re

import pytest

import snnedu
import snnedu.data

SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Other Parameters):"
                     r"\s*$")
ENTRY = re.compile(r"^\s*\**(?P<name>\w+)\s*\((?P<type>.+)\)\s*:(?P<desc>.*)$")


def documented_args(doc: str | None) -> dict:
    """``{name: (type, description)}`` of the entries of every ``Args:``-like section of ``doc``."""
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    out = {}
    i = 0
    while i < len(lines):
        m = SECTION.match(lines[i])
        i += 1
        if not m:
            continue
        base, indent = len(m.group(1)), None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            cur = len(line) - len(line.lstrip())
            if cur <= base:          # dedent: the section is over
                break
            if indent is None:
                indent = cur
            if cur == indent:
                e = ENTRY.match(line)
                if e:
                    desc = e.group("desc").strip()
                    # a description may start on the next, further indented line
                    nxt = lines[i + 1] if i + 1 < len(lines) else ""
                    if not desc and nxt.strip() and len(nxt) - len(nxt.lstrip()) > indent:
                        desc = nxt.strip()
                    out[e.group("name")] = (e.group("type").strip(), desc)
            i += 1
    return out


def constructor_params(cls) -> list:
    """Names of the parameters of ``cls.__init__`` that a docstring must list."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):  # a builtin without a signature
        return []
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind not in skip]


def undocumented(cls) -> list:
    """The constructor parameters of ``cls`` without a typed, described ``Args:`` entry."""
    entries = documented_args(cls.__dict__.get("__doc__"))
    own_init = cls.__dict__.get("__init__")
    if own_init is not None:
        entries.update(documented_args(getattr(own_init, "__doc__", None)))
    return [p for p in constructor_params(cls) if p not in entries or not all(entries[p])]


def public_classes() -> list:
    seen, out = set(), []
    for mod in (snnedu, snnedu.data):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) and obj not in seen:
                seen.add(obj)
                out.append(obj)
    return out


CLASSES = public_classes()


def test_there_are_public_classes_with_parameters():
    assert len(CLASSES) > 30
    assert sum(bool(constructor_params(c)) for c in CLASSES) > 30


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_constructor_parameter_is_documented(cls):
    missing = undocumented(cls)
    assert not missing, (f"{cls.__module__}.{cls.__qualname__}: document {missing} in the class docstring's "
                         "Args: section, one entry each, as `name (type): meaning`")


# -- the checker itself can fail -----------------------------------------------------------------------


class _UnderDocumented:
    """A dummy with gaps.

    Args:
        a (int): documented properly.
        b: no type.
        c (float):
        d (str): documented
            over two lines.
    """

    def __init__(self, a: int, b, c: float, d: str, e: bool = False, *args, **kwargs):
        pass


class _FullyDocumented:
    """A dummy without gaps; the second entry's description starts on the next line.

    Args:
        a (int): the first.
        b (tuple of (int, int)):
            the second.

    Keyword Args:
        c (bool): keyword only.
    """

    def __init__(self, a, b, *, c=False, **kwargs):
        pass


class _DocumentedInInit:
    def __init__(self, x):
        """Set up.

        Args:
            x (int): documented in ``__init__``.
        """


class _NameOnlyInProse:
    """Mentions ``x`` in prose but has no entry for it."""

    def __init__(self, x):
        pass


def test_checker_flags_missing_untyped_and_undescribed_entries():
    assert undocumented(_UnderDocumented) == ["b", "c", "e"]


def test_checker_accepts_complete_docstrings():
    assert undocumented(_FullyDocumented) == []
    assert undocumented(_DocumentedInInit) == []


def test_checker_wants_an_entry_not_a_mention():
    assert undocumented(_NameOnlyInProse) == ["x"]


def test_checker_ignores_entries_outside_args_sections():
    class Dummy:
        """Example::

            x (int): looks like an entry, but in a literal block

        Returns:
            y (int): not a parameter.
        """

        def __init__(self, x, y):
            pass

    assert undocumented(Dummy) == ["x", "y"]
