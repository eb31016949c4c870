"""Typed namelist machinery: declare keys once, load YAML with every error reported at once.

A section is a frozen, keyword-only dataclass whose fields are declared with :func:`key` (default,
unit, description, allowed values or range). :func:`build` turns a plain mapping into the dataclass
tree, collecting every problem (unknown key, wrong type, value out of range, bad choice) with its key
path and YAML line, and raises one :class:`NamelistError` listing them all.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import types
import typing
from pathlib import Path

INT64_MAX = 2**63 - 1
PATH_RULE = ("A relative path written in a namelist file is relative to the folder of that file; a relative path "
             "typed on the command line (--set, --restart, --insitu) is relative to the current folder.")


class NamelistError(ValueError):
    """One or more namelist problems; ``problems`` holds one message per problem."""

    def __init__(self, problems, source=""):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in namelist {source}".rstrip()
        super().__init__(head + ":\n  " + "\n  ".join(self.problems))


def key(default, *, unit="", doc="", choices=None, lo=None, hi=None):
    """A namelist key: its default and documentation (unit, meaning, allowed values or range)."""
    meta = {"unit": unit, "doc": doc, "choices": choices, "lo": lo, "hi": hi}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults (sections are frozen)")
    return dataclasses.field(default=default, metadata=meta)


def section(cls):
    """Decorator: a frozen keyword-only dataclass section."""
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


class _Ctx:
    def __init__(self, lines, base_dir):
        self.lines, self.base_dir, self.problems, self.failed = lines, base_dir, [], set()

    def fail(self, path, msg):
        self.failed.add(tuple(path))
        self.problems.append(located(self.lines, path, msg))


def located(lines, path, msg) -> str:
    """``msg`` about the key at ``path``, prefixed with its YAML line (or "--set") and dotted key path."""
    line = lines.get(tuple(path))
    where = f"line {line}: " if isinstance(line, int) else (f"{line}: " if line else "")
    return f"{where}{key_path(path) or '<top>'}: {msg}"


def key_path(path) -> str:
    """Printable key path: names joined by dots, list items as ``[i]`` (``observations[1].error``)."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _is_section(tp):
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(value, tp, path, meta, ctx):
    """Convert one YAML value to annotation ``tp``; report problems via ``ctx``; return value or None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], path, meta, ctx)
    if _is_section(tp):
        return build(tp, value, ctx=ctx, path=path)
    if origin is tuple and _is_section(typing.get_args(tp)[0]):  # a list of sections (one mapping: a list of one)
        if isinstance(value, dict):
            return (build(typing.get_args(tp)[0], value, ctx=ctx, path=path),)
        if not isinstance(value, (list, tuple)) or not value:
            ctx.fail(path, f"expected a mapping or a non-empty list of mappings, got {value!r}")
            return None
        return tuple(build(typing.get_args(tp)[0], v, ctx=ctx, path=path + (i,)) for i, v in enumerate(value))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            value = [value] if args[-1] is Ellipsis else value
        if not isinstance(value, (list, tuple)):
            ctx.fail(path, f"expected a list, got {value!r}")
            return None
        if args[-1] is not Ellipsis and len(value) != len(args):
            ctx.fail(path, f"expected {len(args)} values, got {len(value)}")
            return None
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        out = [_convert(v, k, path, {**meta, "choices": meta.get("choices")}, ctx) for v, k in zip(value, kinds, strict=False)]
        return tuple(out)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            ctx.fail(path, f"expected a mapping, got {value!r}")
            return None
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            ctx.fail(path, f"expected true or false, got {value!r}")
            return None
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            ctx.fail(path, f"expected an integer, got {value!r}")
            return None
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            ctx.fail(path, f"{value!r} does not fit a 64-bit integer")
            return None
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            ctx.fail(path, f"expected a number, got {value!r}")
            return None
        value = float(value)
        if not math.isfinite(value):
            ctx.fail(path, f"expected a finite number, got {value!r}")
            return None
    elif tp is str:
        if isinstance(value, (datetime.date, datetime.datetime)):  # YAML timestamps
            value = value.replace(tzinfo=None) if isinstance(value, datetime.datetime) else value
            value = value.isoformat()
        if isinstance(value, (dict, list, bool)) or value is None:
            ctx.fail(path, f"expected a string, got {value!r}")
            return None
        value = str(value)
    elif tp is Path:
        if not isinstance(value, str):
            ctx.fail(path, f"expected a path, got {value!r}")
            return None
        p = Path(value).expanduser()
        base = Path.cwd() if ctx.lines.get(path) == "--set" else ctx.base_dir  # see PATH_RULE
        return p if p.is_absolute() or base is None else Path(os.path.normpath(base / p))
    choices, lo, hi = meta.get("choices"), meta.get("lo"), meta.get("hi")
    if choices is not None and value not in choices:
        ctx.fail(path, f"{value!r} is not one of: {', '.join(map(str, choices))}")
        return None
    if lo is not None and value < lo or hi is not None and value > hi:
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        ctx.fail(path, f"{value!r} is outside the allowed range {rng}")
        return None
    return value


def build(cls, data, *, ctx=None, path=(), lines=None, base_dir=None, source=""):
    """Build section ``cls`` from a mapping; raises NamelistError (all problems) at the top level."""
    top = ctx is None
    if top:
        ctx = _Ctx(lines or {}, base_dir)
    data = {} if data is None else data
    if not isinstance(data, dict):
        ctx.fail(path, f"expected a mapping of keys, got {data!r}")
        data = {}
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            ctx.fail(path + (str(k),), f"unknown key; valid keys here: {', '.join(names)}")
    kwargs = {}
    for name, f in names.items():
        if name in data:
            v = _convert(data[name], hints[name], path + (name,), f.metadata, ctx)
            if v is not None or data[name] is None:
                kwargs[name] = v
        elif _is_section(hints[name]):
            kwargs[name] = build(hints[name], {}, ctx=ctx, path=path + (name,))
        elif isinstance(f.default, Path) and ctx.base_dir is not None and not f.default.is_absolute():
            kwargs[name] = Path(os.path.normpath(ctx.base_dir / f.default))
    obj = None
    try:
        obj = cls(**kwargs)
        for msg_path, msg in getattr(obj, "check", lambda: [])():
            if path + tuple(msg_path) not in ctx.failed:  # a bad key already reported: no knock-on message
                ctx.fail(path + tuple(msg_path), msg)
    except TypeError as exc:  # only reached when a nested conversion already failed
        ctx.fail(path, str(exc))
    if top and ctx.problems:
        raise NamelistError(ctx.problems, source)
    return obj


def to_plain(obj):
    """Section tree -> plain YAML-able data (paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def describe(cls, prefix=""):
    """Rows (key path, type, default, unit, description) of every key, for the documentation."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        name = f"{prefix}{f.name}"
        if _is_section(tp):
            rows += describe(tp, name + ".")
            continue
        if typing.get_origin(tp) is tuple and _is_section(typing.get_args(tp)[0]):  # a list of sections
            rows += describe(typing.get_args(tp)[0], name + "[].")
            continue
        meta = f.metadata
        doc = meta.get("doc", "")
        if meta.get("choices"):
            doc += f" One of: {', '.join(map(str, meta['choices']))}."
        if meta.get("lo") is not None or meta.get("hi") is not None:
            lo, hi = meta.get("lo"), meta.get("hi")
            hi = "2**63 - 1" if hi == INT64_MAX else hi
            doc += f" Range [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]."
        tname = str(tp) if typing.get_args(tp) else tp.__name__
        tname = tname.replace("typing.", "").replace("pathlib.", "").replace(" | ", " or ")
        rows.append((name, tname, to_plain(f.default), meta.get("unit", ""), doc.strip()))
    return rows
