"""How a function uses its parameters, read from its source: as streams, or as plain values.

``bind`` finds stream parameters by their values (an MLX device or stream, or a
name such as "cpu:1"). Values alone cannot tell two mistakes apart from
intent: a misspelt name ("CPU", "gpu0") given to a parameter the function
passes as ``stream=`` looks like an ordinary string and would reach MLX, and
an ordinary option that happens to read "cpu" (``backend="cpu"``, compared in
an ``if``) looks like a stream name. The function's source settles both:

* ``streams``: parameters passed as ``stream=`` to any call, or as the first
  argument of ``mx.stream(...)`` / ``mx.synchronize(...)``, or handed on to a
  Python function of the program that uses that argument as a stream
  (``helper(x, s)``, ``helper(x, d=s)``: read through up to three such calls);
* ``plain``: parameters only ever read as plain values: compared, formatted into
  a string (or printed), used as a subscript or a condition (never passed to any
  other call, stored or returned, where they might yet become a stream).

Where there is no source (a builtin, a ``functools.partial``, code typed at a
bare REPL), both sets are empty and ``bind`` goes by values, as before.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_STREAM_CALLS = frozenset({"stream", "synchronize"})  # mx.stream(s), mx.synchronize(s)
_PLAIN_CALLS = frozenset({"print", "repr", "str", "format", "len", "isinstance", "hash"})
_Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass(frozen=True)
class ParamUse:
    streams: frozenset[str] = frozenset()
    plain: frozenset[str] = frozenset()


_DEPTH = 3  # calls followed into helpers: enough for a wrapper of a wrapper


def param_use(fun: Callable[..., Any], _depth: int = _DEPTH) -> ParamUse:
    """Which of ``fun``'s parameters its source uses as streams, and which as plain values."""
    node = _function_node(fun)
    if node is None:
        return ParamUse()
    a = node.args
    params = {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    names = _names_of(fun)
    parents = {child: parent for parent in ast.walk(node) for child in ast.iter_child_nodes(parent)}
    streams: set[str] = set()
    other: set[str] = set()
    seen: set[str] = set()  # a parameter never read says nothing: it goes by its value
    body = node.body if isinstance(node.body, list) else [node.body]
    for stmt in body:
        for name in ast.walk(stmt):
            if not isinstance(name, ast.Name) or name.id not in params:
                continue
            seen.add(name.id)
            parent = parents.get(name)
            if _as_stream(name, parent) or (
                    _depth > 0 and _forwarded_as_stream(name, parent, parents, names, _depth)):
                streams.add(name.id)
            elif not _plain(name, parent):
                other.add(name.id)
    return ParamUse(frozenset(streams), frozenset(seen - streams - other))


def _function_node(target: Callable[..., Any]) -> _Function | None:
    """The ``def`` or ``lambda`` of ``target`` in its source, if found unambiguously."""
    fun: Any = inspect.unwrap(target)
    if not inspect.isroutine(fun):
        fun = type(fun).__call__  # a callable object: its class's __call__
    if inspect.ismethod(fun):
        fun = fun.__func__
    if not inspect.isfunction(fun):
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fun)))
    except (OSError, TypeError, SyntaxError):
        return None
    if fun.__name__ == "<lambda>":
        lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
        return lambdas[0] if len(lambdas) == 1 else None
    first = tree.body[0] if tree.body else None
    if isinstance(first, (ast.FunctionDef, ast.AsyncFunctionDef)) and first.name == fun.__name__:
        return first
    return None


def _as_stream(name: ast.Name, parent: ast.AST | None) -> bool:
    if isinstance(parent, ast.keyword):
        return parent.arg == "stream"
    if isinstance(parent, ast.Call) and parent.args and parent.args[0] is name:
        func = parent.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        return called in _STREAM_CALLS
    return False


def _names_of(target: Callable[..., Any]) -> dict[str, Any]:
    """What names in ``target``'s body refer to: its globals, then its closure."""
    fun: Any = inspect.unwrap(target)
    if not inspect.isfunction(fun):
        fun = getattr(fun, "__func__", None) or getattr(type(fun).__call__, "__func__", None)
    if not inspect.isfunction(fun):
        return {}
    names = dict(fun.__globals__)
    for cell_name, cell in zip(fun.__code__.co_freevars, fun.__closure__ or ()):
        try:
            names[cell_name] = cell.cell_contents
        except ValueError:  # an empty cell: not yet assigned
            pass
    return names


def _forwarded_as_stream(name: ast.Name, parent: ast.AST | None,
                         parents: dict[ast.AST, ast.AST], names: dict[str, Any],
                         depth: int) -> bool:
    """``name`` handed to a Python function (``helper(x, name)``, ``helper(d=name)``)
    whose own source uses that parameter as a stream."""
    call = parents.get(parent) if isinstance(parent, ast.keyword) else parent
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        return False
    helper = names.get(call.func.id)
    if not inspect.isfunction(helper):
        return False
    try:
        sig = inspect.signature(helper)
    except (TypeError, ValueError):
        return False
    if isinstance(parent, ast.keyword):
        target = parent.arg
    elif name in call.args and not any(isinstance(x, ast.Starred) for x in call.args):
        positional = [p.name for p in sig.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        index = call.args.index(name)
        target = positional[index] if index < len(positional) else None
    else:
        return False
    return target is not None and target in param_use(helper, depth - 1).streams


def _plain(name: ast.Name, parent: ast.AST | None) -> bool:
    """Read, and only as a plain value: nothing here can hand it to MLX as a stream."""
    if not isinstance(name.ctx, ast.Load):
        return False  # re-bound: what it holds afterwards is unknown
    if isinstance(parent, (ast.Compare, ast.FormattedValue)):
        return True
    if isinstance(parent, ast.Subscript):
        return parent.slice is name  # d[name], not name[...]
    if isinstance(parent, (ast.If, ast.While, ast.IfExp, ast.Assert)):
        return parent.test is name
    if isinstance(parent, ast.Call) and name in parent.args:  # print(name), str(name)
        return isinstance(parent.func, ast.Name) and parent.func.id in _PLAIN_CALLS
    return False
