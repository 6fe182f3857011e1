"""The benchmark suite's report: rendered from the parts' saved JSON, one file per part."""

import json

from bench import suite
from bench.report import Chart, Section, Table, save_section

MACHINE = {"CPU": "Test CPU", "cores": 2, "memory": "1.0 GiB"}


def _section(key, title, seconds):
    return Section(
        key=key,
        title=title,
        command=f"python -m bench --only {key}",
        intro="What the part measures.",
        tables=[
            Table(
                title=f"{title} table",
                columns=["case", "seconds", "× baseline"],
                rows=[["baseline", seconds, "1.00×"], ["ours", None, "0.50×"]],
                limit="reading the bytes from the page cache: 1.2 s",
                note="Median of 3.",
            )
        ],
        charts=[Chart(f"{key}.png", f"{title} chart")],
        notes=[f"{title}: target met."],
        data={"kept": {"measured_at": "2026-01-01", "seconds": seconds}},
    )


def test_the_report_shows_every_saved_part_in_order_with_its_tables_limit_and_chart(tmp_path):
    out = tmp_path / "bench"
    # Saved out of order, and the build part saved twice: the second run replaces the first.
    save_section(_section("build", "Build", 2.5), out, machine=MACHINE, quick=False)
    save_section(_section("load", "Load", 0.25), out, machine=MACHINE, quick=False)
    save_section(_section("build", "Build", 3.5), out, machine=MACHINE, quick=False)

    report = suite.write_report(tmp_path).read_text()

    assert report.index("## Load") < report.index("## Build")
    assert "| baseline | 3.5 | 1.00× |" in report and "| baseline | 2.5 |" not in report
    assert "| ours | — | 0.50× |" in report
    assert "*Limit:* reading the bytes from the page cache: 1.2 s" in report
    assert "![Load chart](bench/load.png)" in report
    assert "python -m bench --only build" in report
    assert "- Build: target met." in report
    assert "| CPU | Test CPU |" in report


def test_a_part_run_on_another_machine_gets_its_own_column(tmp_path):
    out = tmp_path / "bench"
    save_section(_section("load", "Load", 0.25), out, machine=MACHINE, quick=False)
    save_section(_section("build", "Build", 2.5), out, machine={**MACHINE, "cores": 8}, quick=True)

    report = suite.write_report(tmp_path).read_text()

    assert "| fact | load | build |" in report
    assert "| cores | 2 | 8 |" in report
    assert "(quick run)" in report


def test_report_only_renders_the_saved_json_without_running_parts(tmp_path):
    save_section(_section("load", "Load", 0.25), tmp_path / "bench", machine=MACHINE, quick=False)

    assert suite.main(["--report-only", "--out", str(tmp_path)]) == 0

    saved = json.loads((tmp_path / "bench" / "load.json").read_text())
    assert saved["section"]["data"]["kept"]["seconds"] == 0.25
    assert "## Load" in (tmp_path / "BENCHMARKS.md").read_text()


def test_unknown_parts_are_refused_with_the_valid_ones(capsys):
    import pytest

    with pytest.raises(SystemExit):
        suite.parse_args(["--only", "load,nonsense"])
    assert "unknown part(s) nonsense; valid parts are load, build" in capsys.readouterr().err
