"""The lesson notebooks' own rules, checked without running them (nbval runs them).

A notebook here is a lesson and a test on every platform, so its stored outputs
must come from a clean CI-sized run, every platform-dependent output it hides from
nbval must be backed by an assertion, and it must end with exercises. Every rule
applies to every notebook in notebooks/, the lessons later issues add included.

The claims rules (docs/lessons.md): no assertion whose condition cannot fail; no
markdown reference to a path that is not in the repository, to an issue by number,
or to a shared/ folder; every number a lesson's markdown or the README's table of
`fun` on each platform quotes is in notebooks/reference.json; every lesson has a
claims table whose rows say how each claim is checked. tests/test_notebooks_rerun.py
runs each notebook twice and compares the untagged cells' outputs.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
IGNORE = "nbval-ignore-output"
REFERENCE = json.loads((REPO / "notebooks" / "reference.json").read_text(encoding="utf-8"))
CLAIMS = REPO / "docs" / "lessons.md"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_the_lessons_exist_numbered_in_order() -> None:
    """The six lessons, and any later ones, numbered 01, 02, ... without gaps."""
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 6, names
    for i, name in enumerate(names, start=1):
        assert re.fullmatch(rf"{i:02d}_[a-z_]+\.ipynb", name), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ci_switch_and_exercises(path: Path) -> None:
    nb = load(path)
    assert 'CI = os.environ.get("UNIMEM_CI") == "1"' in source(code_cells(nb)[0]), \
        "the first code cell must pick the CI-sized workload from UNIMEM_CI"
    last = nb["cells"][-1]
    assert last["cell_type"] == "markdown" and "## Exercises" in source(last)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_a_clean_run(path: Path) -> None:
    """Every code cell ran, none failed, and no run-specific noise was stored."""
    nb = load(path)
    assert "widgets" not in nb["metadata"], "strip widget state: it bloats diffs"
    for i, cell in enumerate(code_cells(nb)):
        assert cell["execution_count"] is not None, f"code cell {i} was not run"
        assert "execution" not in cell["metadata"], f"code cell {i} stores timestamps"
        assert not any(o["output_type"] == "error" for o in cell["outputs"]), f"cell {i} failed"
        text = output_text(cell)
        assert not re.search(r"\b0x[0-9a-f]{6,}", text), f"cell {i} shows a memory address"
        assert "/work/" not in text and "/home/" not in text, f"cell {i} shows a local path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_hidden_outputs_are_backed_by_assertions(path: Path) -> None:
    """A cell nbval does not compare asserts its invariant, or the next code cell does.

    Displays of a widget or repr may stand alone only when the same object is checked
    further down (the next cell that uses the name asserts on it).
    """
    cells = code_cells(nb := load(path))
    for i, cell in enumerate(cells):
        if IGNORE not in cell["metadata"].get("tags", []):
            continue
        nearby = [source(c) for c in cells[i:i + 3]]
        assert any("assert " in s for s in nearby), (
            f"{path.name}: code cell {i} hides its output from nbval and no assertion follows:\n"
            f"{source(cell)}")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_the_browser_test_finds_its_widgets() -> None:
    """The real-browser test looks for explore in 01 and residency strips in 04."""
    by_name = {p.name[:2]: "\n".join(source(c) for c in code_cells(load(p))) for p in NOTEBOOKS}
    assert "um.explore(" in by_name["01"]
    assert "um.MemoryView(" in by_name["04"] and "um.track(" in by_name["04"]


# -- claims: assertions that can fail ------------------------------------------------

def constant_condition(test: ast.expr) -> str | None:
    """Why an assertion's condition cannot fail, or None when it can."""
    if isinstance(test, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and (
            test.keys if isinstance(test, ast.Dict) else test.elts):
        return "a non-empty literal is always true"
    if not any(isinstance(n, (ast.Name, ast.Attribute, ast.Call, ast.Subscript))
               for n in ast.walk(test)):
        return "it names nothing: a constant"
    if isinstance(test, ast.Compare):
        operands = [test.left, *test.comparators]
        for op, left, right in zip(test.ops, operands, operands[1:]):
            if (isinstance(op, (ast.Eq, ast.Is, ast.LtE, ast.GtE))
                    and ast.dump(left) == ast.dump(right)):
                return "it compares an expression with itself"
    if isinstance(test, ast.BoolOp):
        parts = [constant_condition(v) for v in test.values]
        if isinstance(test.op, ast.Or) and any(
                isinstance(v, ast.Constant) and v.value for v in test.values):
            return "one side of its `or` is a true constant"
        if isinstance(test.op, ast.And) and all(parts):
            return "every part of its `and` is constant"
    return None


def parse_cell(cell: dict) -> ast.Module:
    lines = [line for line in source(cell).splitlines() if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_assertion_has_a_constant_condition(path: Path) -> None:
    nb = load(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(parse_cell(cell)):
            if isinstance(node, ast.Assert):
                why = constant_condition(node.test)
                assert why is None, (
                    f"{path.name} cell {i}: `assert {ast.unparse(node.test)}` cannot fail: {why}")


@pytest.mark.parametrize("test, fails", [
    ("assert True", False), ("assert 1 == 1", False), ("assert (x, 'message')", False),
    ("assert x == x", False), ("assert x or True", False), ("assert len(x) <= len(x)", False),
    ("assert x", True), ("assert x > 0", True), ("assert f(x) == 2", True), ("assert a or b", True),
])
def test_the_constant_condition_check_itself(test: str, fails: bool) -> None:
    node = ast.parse(test).body[0]
    assert isinstance(node, ast.Assert)
    assert (constant_condition(node.test) is None) == fails, test


# -- claims: references a reader can follow -------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PATH_LIKE = re.compile(r"\.{0,2}/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*(?:/|\.[A-Za-z0-9]+)")
ISSUE_NUMBER = re.compile(r"\bissues?\s+#?\d+|\bissue\s+#", re.IGNORECASE)
SHARED = re.compile(r"(?<![\w/.-])(?:\.\./)*shared/")


def markdown_cells(nb: dict) -> list[tuple[int, str]]:
    return [(i, source(c)) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]


def referenced_paths(text: str) -> list[str]:
    """Relative links, and code spans that look like a file or folder path."""
    paths = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        paths.append(target.split("#")[0])
    for span in CODE_SPAN.findall(text):
        if "/" in span and PATH_LIKE.fullmatch(span) and not span.startswith("/"):
            paths.append(span)
    return paths


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_references_exist(path: Path) -> None:
    """Paths exist in the repository; no issue numbers, no shared/ folders."""
    for i, text in markdown_cells(load(path)):
        for ref in referenced_paths(text):
            assert (REPO / ref).exists() or (path.parent / ref).exists(), (
                f"{path.name} cell {i} refers to {ref!r}, which is not in the repository")
        assert not ISSUE_NUMBER.search(text), f"{path.name} cell {i} cites an issue by number"
        assert not SHARED.search(text), f"{path.name} cell {i} refers to a shared/ folder"


def test_the_reference_check_itself() -> None:
    assert referenced_paths("see `shared/seeds/` and [x](../docs/lessons.md#a)") == [
        "../docs/lessons.md", "shared/seeds/"]
    assert referenced_paths("`GB/s`, `x / 2`, `chrome://tracing`, [y](https://a.b/c)") == []
    assert ISSUE_NUMBER.search("unimem issue 2") and ISSUE_NUMBER.search("(MLX issue #3896)")
    assert not ISSUE_NUMBER.search("https://github.com/ml-explore/mlx/issues/3896")
    assert SHARED.search("../shared/seeds") and not SHARED.search("notebooks/shared_x/")


def text_files() -> list[Path]:
    """The repository's own text: docs, package, widgets, benchmarks, notebooks, tests."""
    files = [REPO / "README.md", REPO / "Makefile", REPO / "pyproject.toml"]
    for pattern in ("docs/*.md", "unimem/**/*.py", "widgets/*.js", "benchmarks/*.py",
                    "notebooks/*", "tests/**/*.py", "binder/*", ".ci/*"):
        files += [p for p in REPO.glob(pattern) if p.is_file()]
    return sorted(set(files) - {Path(__file__).resolve()})


def test_the_repository_cites_no_issue_numbers_or_shared_folders() -> None:
    for path in text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(REPO)
        assert not ISSUE_NUMBER.search(text), (
            f"{rel} cites an issue by number ({ISSUE_NUMBER.search(text)[0]!r}): link it instead")
        assert not SHARED.search(text), f"{rel} refers to a shared/ folder outside the repository"


# -- claims: reference numbers come from notebooks/reference.json ----------------------

QUANTITY = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?(ms|µs|μs|ns|s|GB/s|TB/s|MB/s)(?![\w/])")


def quoted_numbers(text: str) -> list[tuple[float, str]]:
    return [(float(v), u.replace("μ", "µ")) for v, u in QUANTITY.findall(text)]


def known(value: float, unit: str, sources: tuple[str, ...] | None = None) -> bool:
    return any(n["value"] == value and n["unit"] == unit
               and (sources is None or n["source"] in sources) for n in REFERENCE["numbers"])


def test_reference_data_names_its_sources() -> None:
    fields = {"label", "title", "link", "machine", "mlx", "date", "command"}
    for name, src in REFERENCE["sources"].items():
        assert fields <= set(src), f"reference source {name} lacks {fields - set(src)}"
        assert src["link"].startswith("https://"), name
        assert "quote" in src or "note" in src, name
    for n in REFERENCE["numbers"]:
        assert n["source"] in REFERENCE["sources"], n
        assert n["unit"] in {"s", "ms", "µs", "GB/s", "TB/s"}, n


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_markdown_quotes_only_reference_numbers(path: Path) -> None:
    """A time or bandwidth in a lesson's text is a quoted reference, so it must be in the
    data file; measured numbers are printed by code cells, never typed into markdown."""
    for i, text in markdown_cells(load(path)):
        for value, unit in quoted_numbers(text):
            assert known(value, unit), (
                f"{path.name} cell {i} quotes {value:g} {unit}, which notebooks/reference.json "
                "does not hold: add it there with its source, or print it from a code cell")


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start:end if end > 0 else None]


README_COLUMNS = {"H200": "h200", "CPU box": "cpu-box", "M1 Max": "mlx-docs-m1max"}
README_ROWS = {"all gpu": ("fun.all_gpu",), "split": ("fun.split",),
               "all cpu": ("fun.all_cpu", "fun.one_stream", "fun.two_streams")}


def test_readme_fun_table_matches_the_reference_data() -> None:
    table = [line for line in readme_section("### `fun` on each platform").splitlines()
             if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    sources = [next((s for k, s in README_COLUMNS.items() if c.startswith(k)), None)
               for c in header]
    seen = set()
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        keys = next(v for k, v in README_ROWS.items() if cells[0].startswith(k))
        for cell, src in zip(cells[1:], sources[1:]):
            for value, unit in quoted_numbers(cell):
                match = [n for n in REFERENCE["numbers"] if n["source"] == src
                         and n["key"] in keys and (n["value"], n["unit"]) == (value, unit)]
                assert match, f"README: {value:g} {unit} ({cells[0]}, {src}) is not in reference.json"
                seen.add((match[0]["key"], src))
    expected = {(n["key"], n["source"]) for n in REFERENCE["numbers"]
                if n["key"].startswith("fun.") and n["source"] in README_COLUMNS.values()}
    assert seen == expected, f"reference.json numbers missing from the README: {expected - seen}"


def test_readme_intro_quotes_only_reference_numbers() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    intro = text[:text.index("## Quick start")]
    for value, unit in quoted_numbers(intro):
        assert known(value, unit), f"README intro quotes {value:g} {unit}, not in reference.json"


# -- claims: every lesson has a claims table in docs/lessons.md ------------------------

HOW = ("asserted", "derived", "quoted", "unimem")


def claims_tables() -> dict[str, list[list[str]]]:
    """docs/lessons.md: one '## NN ...' section per lesson, each with a claims table."""
    tables: dict[str, list[list[str]]] = {}
    current = None
    for line in CLAIMS.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## (\d\d|README)\b", line)
        if heading:
            current = heading[1]
            tables[current] = []
        elif line.startswith(("## ", "# ")):
            current = None
        elif current and line.startswith("|") and not re.match(r"\|\s*-", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] != "claim":
                tables[current].append(cells)
    return tables


def test_every_lesson_has_a_claims_table() -> None:
    tables = claims_tables()
    for path in NOTEBOOKS:
        assert tables.get(path.name[:2]), f"docs/lessons.md has no claims table for {path.name}"


CITED = re.compile(r"(?:\b(\d\d) )?cells? (\d+(?:(?:, | and )\d+)*)")


def cited_cells(how: str, lesson: str) -> list[tuple[str, int]]:
    """'cell 11', 'cells 6, 14', '04 cell 9' (another lesson): (lesson, index) pairs."""
    return [(m[1] or lesson, int(n)) for m in CITED.finditer(how) for n in re.findall(r"\d+", m[2])]


def lesson(prefix: str) -> dict:
    return load(next(p for p in NOTEBOOKS if p.name.startswith(prefix)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claims_say_how_they_are_checked(path: Path) -> None:
    """Each row: where the claim is made (cell indices, from 0, markdown included) and how
    it is checked: asserted (a cited code cell holds an assert), derived (printed by a cited
    code cell), quoted (a link, or a source in reference.json) or unimem (unit tests that
    exist)."""
    nb, prefix = load(path), path.name[:2]
    for claim, where, how in claims_tables()[prefix]:
        kind = how.split()[0].strip("*:").lower()
        assert kind in HOW, f"{path.name}: {claim!r} says {how!r}; use one of {HOW}"
        made_in = [int(n) for n in re.findall(r"\d+", where)]
        assert made_in and all(n < len(nb["cells"]) for n in made_in), (path.name, claim, where)
        cells = [lesson(les)["cells"][n] for les, n in cited_cells(how, prefix)]
        if kind == "asserted":
            assert any(c["cell_type"] == "code" and "assert " in source(c) for c in cells), (
                f"{path.name}: {claim!r} is said to be {how!r}, but no cited cell asserts")
        elif kind == "derived":
            assert cells and all(c["cell_type"] == "code" for c in cells), (path.name, claim)
        elif kind == "quoted":
            assert "http" in how or "reference.json" in how, f"{path.name}: {claim!r} has no source"
        else:
            tests = re.findall(r"tests/[\w/]+\.py", how)
            assert tests and all((REPO / t).exists() for t in tests), (path.name, claim, how)


def test_claims_counts_in_the_closing_note() -> None:
    """The closing note's counts are the tables' counts."""
    rows = [row for table in claims_tables().values() for row in table]
    counts = {k: sum(row[2].split()[0].strip("*:").lower() == k for row in rows) for k in HOW}
    note = CLAIMS.read_text(encoding="utf-8").split("## Counts", 1)[1]
    assert f"**{len(rows)} claims**" in note, f"the tables hold {len(rows)} claims"
    for k, n in counts.items():
        assert f"{n} {k}" in note, f"the tables hold {n} {k} claims"
