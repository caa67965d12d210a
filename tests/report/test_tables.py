"""The report's tables and sections (issue 24): formatted by type, escaped by the templates,
each shown once where its analysis declares it, sections only where they apply, and the run's
warnings with the config key that changes each."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.pipeline.analyses import ANALYSES
from brainalign.pipeline.analysis import ExportContext, ReportSection, RunWarning, Table
from brainalign.pipeline.core import RunReport
from brainalign.pipeline.data_kinds import DATA_KINDS
from brainalign.pipeline.study import run_warnings
from brainalign.report import RunWriter, build_report
from brainalign.report.html import format_column, table_html

SRC = Path(__file__).resolve().parents[2] / "src" / "brainalign"


# ---------------------------------------------------------------------------------- formatting
def test_integers_print_as_integers_also_in_float_columns():
    assert format_column(np.array([1, 26, 3020]))[0] == ["1", "26", "3020"]
    # pandas reads an integer column with a gap as float: still integers, the gap empty
    assert format_column(np.array([2.0, 26.0, np.nan]))[0] == ["2", "26", ""]


def test_floats_get_significant_digits_at_their_scale():
    assert format_column(np.array([0.627, 0.0384, 0.5]))[0] == ["0.627", "0.038", "0.500"]
    assert format_column(np.array([12.34, 5.0, -3.21]))[0] == ["12.3", "5.0", "-3.2"]


def test_large_and_small_numbers_in_scientific_notation():
    texts, numeric = format_column(np.array([1.0, 1e10, 0.5]))
    assert texts[1] == "1e+10" and "10000000000" not in "".join(texts) and numeric
    assert format_column(np.array([0.04, 3.2e-5, 0.5]))[0] == ["0.040", "3.20e-05", "0.500"]


def test_declared_formats_win_over_the_type():
    assert format_column(np.array([1.0, 1e4]), "{:g}")[0] == ["1", "10000"]
    assert format_column(np.array([0.5]), "sci")[0] == ["5.00e-01"]
    assert format_column(np.array([24.66]), "pct")[0] == ["24.7%"]
    assert format_column(np.array([3.0]), "text")[0] == ["3.0"]


def test_text_is_escaped_and_wide_tables_scroll_in_their_box():
    df = pd.DataFrame(
        {"<b>col</b>": ["a <script>x</script> & b"], **{f"c{i}": [i] for i in range(30)}}
    )
    html = table_html(df)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;col" in html
    assert html.lstrip().startswith('<div class="table-wrap" role="region"')


def test_names_may_break_after_underscores_and_numbers_never_break():
    df = pd.DataFrame({"measured_ci_low": [0.25], "best_model": ["mpnet_<nouns>"]})
    html = table_html(df)
    assert "<th>measured_<wbr>ci_<wbr>low</th>" in html
    assert "<td>mpnet_<wbr>&lt;nouns&gt;</td>" in html
    assert '<td class="num">0.250</td>' in html


# -------------------------------------------------------------------------------- run folders
def _run(tmp_path, config: dict, **meta) -> RunWriter:
    w = RunWriter(tmp_path / "run")
    w.json("run", {"config": config, **meta})
    return w


def _section_text(page: str, key: str) -> str:
    m = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    return "" if m is None else m.group(1)


def test_a_declared_table_shows_once_where_its_section_says(tmp_path):
    """An analysis that writes a table needs only its declaration: shown in its section with
    its title, caption and formats, linked once under Files, never printed twice."""
    w = _run(tmp_path, {"name": "t"})
    w.table(
        "unit_counts",
        pd.DataFrame({"roi": ["V1", "IT"], "units": [1200, 800], "alpha": [1.0, 1e10]}),
    )
    w.table("id_list", pd.DataFrame({"image_id": np.arange(60)}))
    w.table("stray", pd.DataFrame({"x": [1, 2]}))
    tables = [
        Table("unit_counts", "Units per ROI", "One row per ROI.", formats={"alpha": "sci"}),
        Table("id_list", "Training images", shown=False),
    ]
    page = build_report(
        w.run_dir,
        sections=[ReportSection("counts", "Counts", tables=("unit_counts",))],
        tables=tables,
    ).read_text()
    counts = _section_text(page, "counts")
    assert "Units per ROI" in counts and "One row per ROI." in counts
    assert ">1200<" in counts and "1.00e+10" in counts and "1200.000" not in page
    assert page.count("Units per ROI</h3>") == 1
    files = _section_text(page, "files")
    # the long id list is a link with its row count, not 60 rows of ids
    assert 'href="tables/id_list.csv"' in files and "60 rows" in files and ">59<" not in page
    # an undeclared table is shown once, under Files
    assert page.count("<h3>stray</h3>") == 1 and "<h3>unit_counts</h3>" not in page
    # no maps: no sentence about maps
    assert "GIFTI" not in page


def test_files_name_the_arrays_and_count_those_not_named(tmp_path):
    from brainalign.report.html import OTHER_ARRAYS

    w = _run(tmp_path, {"name": "t"})
    for i in range(OTHER_ARRAYS + 3):
        w.array(f"a{i:02d}", np.zeros(2))
    files = _section_text(build_report(w.run_dir).read_text(), "files")
    assert f"arrays/: {OTHER_ARRAYS + 3} NumPy arrays (a00.npy, " in files
    assert f"a{OTHER_ARRAYS - 1:02d}.npy and 3 more in " in files and "…" not in files


def test_rdm_report_has_no_betas_or_maps(tmp_path):
    w = _run(
        tmp_path,
        {
            "name": "rdm",
            "data": {"kind": "rdms", "root": "/d/tiny"},
            "features": {"spaces": ["a"]},
            "output": {"dir": str(tmp_path / "run")},
        },
    )
    w.table("rdm_subject_scores", pd.DataFrame({"model": ["a"], "score": [0.2]}))
    from brainalign.pipeline import write_report

    page = write_report(w.run_dir).read_text()
    assert "RDM data sets /d/tiny" in page
    assert "Non-finite betas" not in page and "GIFTI" not in page


def test_nsd_summary_names_non_finite_betas(tmp_path):
    quality = {"non_finite_values": 7, "non_finite": {"1": {"values": 7, "units": 2}}}
    config = {"name": "n", "data": {"kind": "virtual", "root": "/v"}, "output": {"dir": "/o"}}
    w = _run(tmp_path, config, data_quality=quality)
    from brainalign.pipeline import write_report

    page = write_report(w.run_dir).read_text()
    assert "Non-finite betas: 7 NaN/Inf values (subject 1: 7 values in 2 units)" in page
    assert 'class="alert"' in page


def test_report_reads_the_recorded_config_validated(tmp_path):
    """Keys a record leaves out read as the config model's defaults, never as defaults the
    report writes by hand (the summary's space and feature spaces, the compute paragraph, the
    title); a record this version cannot read gives no made-up values."""
    from brainalign.pipeline import write_report
    from brainalign.pipeline.config import ComputeConfig, FeaturesConfig, StudyConfig

    config = {"name": "short record", "data": {"kind": "virtual", "root": "/v"}}
    w = _run(tmp_path, {**config, "output": {"dir": "/o"}})
    page = write_report(w.run_dir).read_text()
    summary, methods = _section_text(page, "summary"), _section_text(page, "methods")
    space = StudyConfig.model_fields["space"].default
    spaces = ", ".join(FeaturesConfig().spaces)
    assert f"space {space}; feature spaces {spaces}." in summary
    c = ComputeConfig()
    assert f"Compute: backend {c.backend} on {c.device}, executor {c.executor} with " in methods
    assert "<title>short record</title>" in page
    # no output folder recorded: this version cannot validate it
    unreadable = _run(tmp_path / "bad", config)
    page = write_report(unreadable.run_dir).read_text()
    assert "Data:" not in _section_text(page, "summary") and "backend None" not in page
    assert "cannot read" in _section_text(page, "methods")


def test_titles_and_config_are_escaped_by_the_templates(tmp_path):
    w = _run(tmp_path, {"name": "<script>alert(1)</script>"})
    w.table("x", pd.DataFrame({"a": ["<img src=x onerror=alert(1)>"]}))
    page = build_report(w.run_dir, title="<script>alert(1)</script>").read_text()
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# ------------------------------------------------------------------------------------ warnings
class _Plan:
    """What run_warnings reads of a plan: the analyses' targets and its notes (none here)."""

    analyses: dict = {}
    notes: list = []


def test_run_warnings_name_what_they_concern_and_the_key(tmp_path):
    ctx = ExportContext(_Plan(), None, None, None)
    ctx.warn(
        "encoding, subject 1",
        "5568 of 20476 units chose the smallest alpha (1)",
        "analyses.encoding.alphas",
    )
    ctx.extras["effective"] = {
        "analyses.roi_rsa.subset_size": {"requested": 100000, "used": 48, "why": "capped"}
    }
    rep = RunReport(
        warnings=[
            ("responses:sub-01", "UserWarning: Y: 8 of 20484 targets contain NaN"),
            ("responses:sub-02", "UserWarning: Y: 9 of 20484 targets contain NaN"),
        ]
    )
    quality = {"non_finite": {"3": {"values": 4, "units": 1}}}
    got = run_warnings(_Plan(), rep, ctx, quality)
    keys = [w.key for w in got]
    assert keys[:2] == ["analyses.encoding.alphas", "analyses.roi_rsa.subset_size"]
    assert "100000" in got[1].message and "48" in got[1].message
    assert (
        got[2]
        == RunWarning(
            "subject 3",
            got[2].message,
            None,
        )
        and "4 NaN/Inf betas" in got[2].message
    )
    # one warning for the same kind from two tasks, naming both; shared stages concern the data
    assert got[3].concerns == "responses:sub-01, responses:sub-02" and got[3].key == "data"
    assert len(got) == 4


def test_warnings_section_lists_run_json_warnings(tmp_path):
    warnings = [
        {
            "concerns": "encoding, subject 1",
            "message": "many <units> at an edge",
            "key": "analyses.encoding.alphas",
        }
    ]
    w = _run(tmp_path, {"name": "w"}, warnings=warnings)
    page = build_report(w.run_dir).read_text()
    section = _section_text(page, "warnings")
    assert "analyses.encoding.alphas" in section and "many &lt;units&gt; at an edge" in section
    assert 'href="#warnings"' in page
    empty = _run(tmp_path / "b", {"name": "w"}, warnings=[])
    assert 'id="warnings"' not in build_report(empty.run_dir).read_text()


# ----------------------------------------------------------------------------- declarations
def _written_tables(path: Path) -> set[str]:
    """Names passed as a literal to ``<writer>.table("name", …)`` in a module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "table"
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names


def test_every_table_the_pipeline_writes_is_declared():
    """The report knows tables only from declarations: one the pipeline writes without one
    would be printed as an 'other' table, once, under Files."""
    declared = {t.name for a in ANALYSES for t in a.tables}
    declared |= {t.name for d in DATA_KINDS.values() for t in d.tables}
    written = set()
    for path in [*(SRC / "pipeline").rglob("*.py")]:
        written |= _written_tables(path)
    assert written and written <= declared, sorted(written - declared)
    for a in ANALYSES:
        names = {t.name for t in a.tables}
        for section in a.sections:
            assert set(section.tables) <= names | {t.name for b in ANALYSES for t in b.tables}


def test_sections_and_tables_of_an_analysis_are_data(tmp_path):
    """A section with only declared tables (no builder) is enough for a new analysis."""
    w = _run(tmp_path, {"name": "t"})
    w.table("t1", pd.DataFrame({"a": [1]}))
    page = build_report(
        w.run_dir,
        sections=[
            ReportSection("s", "S", tables=("t1",)),
            ReportSection("e", "Empty", tables=("t2",)),
        ],
        tables=[Table("t1", "T one"), Table("t2", "T two")],
    ).read_text()
    assert 'id="s"' in page and 'id="e"' not in page
    assert json.loads((w.run_dir / "run.json").read_text())["config"]["name"] == "t"


def test_task_warnings_of_reused_tasks_are_kept(tmp_path):
    """A task's warnings come only when it is computed: a rerun that reuses it keeps them."""
    from brainalign.pipeline.study import _kept_task_warnings

    old = RunWarning("decoding:sub-01", "alphas: 203 of 384 chose 10", "analyses.decoding.alphas")
    old = RunWarning(old.concerns, old.message, old.key, ("decoding:sub-01",))
    export = RunWarning("encoding, subject 1", "edges", "analyses.encoding.alphas")
    w = _run(tmp_path, {"name": "k"}, warnings=[old.as_json(), export.as_json()])
    kept = _kept_task_warnings(w.run_dir, RunReport(reused=["decoding:sub-01"]), [])
    assert kept == [old]  # an export's warning is found again by the export, not kept
    assert _kept_task_warnings(w.run_dir, RunReport(computed=["decoding:sub-01"]), []) == []
    assert _kept_task_warnings(w.run_dir, None, []) == [old]
