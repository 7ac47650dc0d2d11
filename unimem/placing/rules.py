"""Placement rules: which stream an op runs on, decided by an ordered list, last match wins.

A rule is ``selector -> target``. Selectors say where an op is made:

* ``*``                 every op;
* ``op:matmul``         by the MLX call that makes it (``op:matmul|exp`` for either);
  aliases cover the ways one op is spelt: ``matmul`` is ``mx.matmul``, ``mx.addmm``
  and ``@``; ``add`` is ``mx.add`` and ``+``; see ``ALIASES``;
* ``module:layers.0``   inside a module of the placed model whose dotted path matches
  the glob (``*`` within one name, ``**`` across dots): ``module:layers.*.attention``;
* ``region:prefetch``   inside ``with um.region("prefetch"):`` (a glob too);
* ``site:train.py:40-60`` made by a line of the user's code (the first frame outside
  MLX and unimem), ``site:train.py`` for a whole file;
* ``a & b``             both.

Targets are stream names: ``cpu``, ``gpu``, ``cpu:1`` (a second CPU stream), ...
Last match wins, like CSS without specificity: a list reads top to bottom as
"everything on the GPU, but layers.0 on the CPU, but its matmuls on the GPU".
This module is plain data and matching; ``plan.py`` applies it to running code.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..errors import ArgumentTypeError, ArgumentValueError
from ..model.placement import Rule, Rules

# One op, several spellings: the MLX functions, array methods and operators that make it.
ALIASES: dict[str, tuple[str, ...]] = {
    "matmul": ("matmul", "addmm", "__matmul__", "__rmatmul__", "__imatmul__"),
    "add": ("add", "__add__", "__radd__", "__iadd__"),
    "subtract": ("subtract", "__sub__", "__rsub__", "__isub__"),
    "multiply": ("multiply", "__mul__", "__rmul__", "__imul__"),
    "divide": ("divide", "__truediv__", "__rtruediv__", "__itruediv__"),
    "power": ("power", "__pow__", "__rpow__", "__ipow__"),
    "sdpa": ("scaled_dot_product_attention",),
    "sum": ("sum",),
    "mean": ("mean",),
}
ALIASES["mul"], ALIASES["sub"], ALIASES["div"] = (ALIASES["multiply"], ALIASES["subtract"],
                                                   ALIASES["divide"])

_ATOM = re.compile(r"(op|module|region|site):(\S+)\Z")
_SITE = re.compile(r"(?P<file>[^:]+)(?::(?P<first>\d+)(?:-(?P<last>\d+))?)?\Z")


def op_names(op: str) -> tuple[str, ...]:
    """The MLX callables an ``op:`` name stands for (lower case; aliases expanded)."""
    key = op.lower()
    return ALIASES.get(key, (key,))


@dataclass(frozen=True)
class Where:
    """Where an op is being made, as the rules see it."""

    op: str = ""  # the MLX callable ("exp", "__matmul__"); "" for a region's default
    modules: tuple[str, ...] = ()  # enclosing module paths, outermost first
    regions: tuple[str, ...] = ()  # enclosing regions, outermost first
    site: tuple[str, int] | None = None  # (file name, line) of the user's code


@dataclass(frozen=True)
class Atom:
    kind: str  # "*", "op", "module", "region", "site"
    pattern: str

    def matches(self, where: Where) -> bool:
        if self.kind == "*":
            return True
        if self.kind == "op":
            return bool(where.op) and any(where.op in op_names(p) for p in self.pattern.split("|"))
        if self.kind == "module":
            return any(_glob(self.pattern).match(m) for m in where.modules)
        if self.kind == "region":
            return any(fnmatch.fnmatchcase(r, self.pattern) for r in where.regions)
        return where.site is not None and _site_matches(self.pattern, *where.site)

    @property
    def needs_op(self) -> bool:
        """Whether the atom looks at single ops (so ops must be intercepted one by one)."""
        return self.kind in ("op", "site")


@dataclass(frozen=True)
class Selector:
    """A conjunction of atoms; ``*`` alone matches everything."""

    text: str
    atoms: tuple[Atom, ...]

    def matches(self, where: Where) -> bool:
        return all(a.matches(where) for a in self.atoms)

    @property
    def per_op(self) -> bool:
        return any(a.needs_op for a in self.atoms)

    def op_names(self) -> set[str]:
        """Every callable an ``op:`` atom names (empty: the rule is not about ops)."""
        return {n for a in self.atoms if a.kind == "op"
                for p in a.pattern.split("|") for n in op_names(p)}


@dataclass(frozen=True)
class ParsedRule:
    selector: Selector
    target: str  # a stream name, checked by the caller that resolves it


def parse_selector(text: str) -> Selector:
    if not isinstance(text, str):
        raise ArgumentTypeError(f"a rule's selector must be a string, got {type(text).__name__}")
    parts = [p.strip() for p in text.split("&")]
    atoms = []
    for part in parts:
        if part == "*":
            atoms.append(Atom("*", "*"))
            continue
        m = _ATOM.match(part)
        if m is None:
            raise ArgumentValueError(
                f"rule selector {text!r}: {part!r} is not '*', 'op:NAME', 'module:GLOB', "
                "'region:GLOB' or 'site:FILE[:LINE[-LINE]]' (join them with '&')")
        kind, pattern = m.groups()
        if kind == "site" and _SITE.match(pattern) is None:
            raise ArgumentValueError(f"rule selector {text!r}: {pattern!r} is not FILE, "
                                     "FILE:LINE or FILE:FIRST-LAST")
        atoms.append(Atom(kind, pattern))
    return Selector(text, tuple(atoms))


def normalise(rules: Mapping[str, str] | Iterable[Sequence[str]]) -> Rules:
    """Rules as ``(selector, target)`` pairs, from a dict (its order) or a list of pairs."""
    if isinstance(rules, Mapping):
        pairs = list(rules.items())
    elif isinstance(rules, (str, bytes)) or not isinstance(rules, Iterable):
        raise ArgumentTypeError("rules must be a dict {selector: target} or a list of "
                                f"(selector, target) pairs, got {type(rules).__name__}")
    else:
        pairs = []
        for pair in rules:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise ArgumentValueError(f"each rule must be a (selector, target) pair, "
                                         f"got {pair!r}")
            pairs.append((pair[0], pair[1]))
    if not pairs:
        raise ArgumentValueError("rules is empty: give at least one, e.g. {'*': 'cpu'}")
    out: list[Rule] = []
    for sel, target in pairs:
        if not isinstance(target, str):
            raise ArgumentTypeError(f"rule {sel!r}: the target must be a stream name such as "
                                    f"'cpu', 'gpu' or 'cpu:1', got {type(target).__name__}")
        out.append((str(sel), target))
    return tuple(out)


def parse(rules: Rules) -> tuple[ParsedRule, ...]:
    return tuple(ParsedRule(parse_selector(sel), target) for sel, target in rules)


def decide(rules: Sequence[ParsedRule], where: Where) -> int | None:
    """The index of the last rule matching ``where`` (None: no rule, MLX's default)."""
    for i in range(len(rules) - 1, -1, -1):
        if rules[i].selector.matches(where):
            return i
    return None


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A dotted-path glob: ``*`` matches within one name, ``**`` across dots."""
    out = []
    for piece in re.split(r"(\*\*|\*|\?)", pattern):
        if piece == "**":
            out.append(".*")
        elif piece == "*":
            out.append(r"[^.]*")
        elif piece == "?":
            out.append(r"[^.]")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out) + r"\Z")


def _site_matches(pattern: str, file: str, line: int) -> bool:
    m = _SITE.match(pattern)
    assert m is not None  # checked when parsed
    name = m.group("file")
    if not (file == name or file.endswith("/" + name)):
        return False
    if m.group("first") is None:
        return True
    first = int(m.group("first"))
    last = int(m.group("last") or first)
    return first <= line <= last
