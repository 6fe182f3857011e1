"""What a benchmark part returns, how it is saved as JSON, and the Markdown report made from it.

A part returns a ``Section`` of ``Table``s and ``Chart``s. The suite saves each section as
``<out_dir>/<key>.json`` (one file per part, so a part run alone replaces only its own file) and
renders the report from every JSON file present, in the registered order of the parts.
"""

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path.home() / ".cache" / "hybridrec-bench"
# The hand-written prose appended to the report (soak and fault runs, which are not parts).
EXTRA_NAME = "extra.md"


@dataclass
class Table:
    """A table of results; ``limit`` is the one line under it naming the physical limit it is closest to."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    limit: str
    note: str = ""


@dataclass
class Chart:
    """A PNG chart: ``path`` is its file name inside the output folder, ``alt`` its alternative text."""

    path: str
    alt: str


@dataclass
class Section:
    """One part's results: what was run (``command``), what it means (``intro``), tables, charts, notes.

    ``data`` holds raw figures a later run may reuse (a measurement too slow to repeat, with its date).
    """

    key: str
    title: str
    command: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Where a part reads data and writes results, and how big a run it is.

    ``data_dir`` caches generated data sets (``BENCH_DATA_DIR``); ``out_dir`` receives the JSON
    files; ``charts_dir`` the PNGs (the same folder unless told otherwise); ``log`` prints a progress
    line. ``previous`` is the section this part saved last time (or None), for reusable figures.
    """

    quick: bool
    data_dir: Path
    out_dir: Path
    charts_dir: Path
    log: Callable[[str], None] = print
    remeasure_seed: bool = False
    previous: Section | None = None

    def chart_path(self, name: str) -> Path:
        """Return where a chart named ``name`` (e.g. ``load.png``) is written."""
        self.charts_dir.mkdir(parents=True, exist_ok=True)
        return self.charts_dir / name


def data_dir_from_env() -> Path:
    """Return ``BENCH_DATA_DIR`` or the default cache folder."""
    return Path(os.environ.get("BENCH_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def save_section(section: Section, out_dir: Path, *, machine: dict[str, Any], quick: bool) -> Path:
    """Write ``section`` to ``out_dir/<key>.json`` with the machine facts and the time it ran."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "section": dataclasses.asdict(section),
        "machine": machine,
        "quick": quick,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = out_dir / f"{section.key}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=1, default=_plain) + "\n")
    os.replace(temporary, path)
    return path


def _plain(value: Any) -> Any:
    """Turn numpy scalars (and anything else with ``item()``) into JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def section_from_json(document: dict[str, Any]) -> Section:
    """Return the ``Section`` stored in a part's JSON document."""
    raw = dict(document["section"])
    raw["tables"] = [Table(**table) for table in raw.get("tables", [])]
    raw["charts"] = [Chart(**chart) for chart in raw.get("charts", [])]
    return Section(**raw)


def load_saved(out_dir: Path, key: str) -> dict[str, Any] | None:
    """Return the JSON document a part saved in ``out_dir``, or None."""
    path = out_dir / f"{key}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def markdown_table(table: Table) -> str:
    """Return a table as Markdown: title, header, rows, then its note and its limit line."""
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    lines.append("")
    if table.note:
        lines += [table.note, ""]
    lines += [f"*Limit:* {table.limit}", ""]
    return "\n".join(lines)


def _cell(cell: Any) -> str:
    if cell is None:
        return "—"
    return str(cell).replace("|", "\\|")


def render_report(
    documents: list[dict[str, Any]], *, chart_prefix: str, extra: str = "", commands: str = ""
) -> str:
    """Return the Markdown report for saved part documents (in report order).

    ``chart_prefix`` is the charts' folder relative to the report (``bench/``).
    """
    lines = [
        "# Benchmarks",
        "",
        "Rendered by `python -m bench` from the JSON files in `docs/bench/` (one per part); every figure",
        "was measured by the command shown with its section, on the machine described below. Machines",
        "are noisy, so each comparison is a ratio against a baseline measured in the same run.",
        "",
    ]
    if commands:
        lines += ["```", commands.strip(), "```", ""]
    lines += _machine_lines(documents)
    for document in documents:
        section = section_from_json(document)
        when = document.get("measured_at", "")
        lines += [f"## {section.title}", ""]
        lines += [f"```\n{section.command}\n```", ""]
        lines += [f"Measured {when}{' (quick run)' if document.get('quick') else ''}.", ""]
        if section.intro:
            lines += [section.intro.strip(), ""]
        for table in section.tables:
            lines.append(markdown_table(table))
        for chart in section.charts:
            lines += [f"![{chart.alt}]({chart_prefix}{chart.path})", ""]
        for note in section.notes:
            lines += [f"- {note}"]
        if section.notes:
            lines.append("")
    if extra:
        lines += [extra.strip(), ""]
    return "\n".join(lines)


def _machine_lines(documents: list[dict[str, Any]]) -> list[str]:
    """Return the machine table, one column per distinct machine the parts ran on."""
    machines: list[tuple[dict[str, Any], list[str]]] = []
    for document in documents:
        machine = document.get("machine") or {}
        key = document["section"]["key"]
        for known, keys in machines:
            if known == machine:
                keys.append(key)
                break
        else:
            machines.append((machine, [key]))
    if not machines:
        return []
    facts = list(dict.fromkeys(name for machine, _ in machines for name in machine))
    lines = ["## The machine", ""]
    if len(machines) == 1:
        lines += ["| fact | value |", "|---|---|"]
        lines += [f"| {name} | {_cell(machines[0][0].get(name))} |" for name in facts]
    else:
        header = " | ".join(", ".join(keys) for _, keys in machines)
        lines += [f"| fact | {header} |", "|---|" + "---|" * len(machines)]
        for name in facts:
            lines.append(f"| {name} | " + " | ".join(_cell(m.get(name)) for m, _ in machines) + " |")
    lines.append("")
    return lines
