"""`write_report`: a finished study directory -> HTML and Markdown report with figures.

Layout under `out_dir` (default `<study_dir>/report/`): `report.html` (self-contained),
`report.md` (figures linked), `figures/*.png` and `figures/*.svg`.
"""

from __future__ import annotations

from pathlib import Path

from dermkd.io import write_text
from dermkd.report import sections
from dermkd.report.analysis import ALPHA, Analysis
from dermkd.report.calibration_section import calibration_section
from dermkd.report.cells import METRIC_NOTE
from dermkd.report.claims import claims_section
from dermkd.report.costs import CostMeter
from dermkd.report.document import Report, Section
from dermkd.report.html import render_html
from dermkd.report.loading import StudyData, load_study_dir
from dermkd.report.markdown import render_markdown
from dermkd.report.seeds import seeds_section
from dermkd.report.summary import summary_section


def build_report(study: StudyData, out_dir: Path, meter: CostMeter) -> Report:
    """Every section, in reading order; draws the figures into out_dir/figures."""
    analysis = Analysis(study)
    figures_dir = out_dir / "figures"
    body = [
        sections.table4(study, analysis, figures_dir),
        sections.strategies(study, analysis, figures_dir),
        sections.teachers(study, analysis, meter),
        sections.students(study, analysis, meter, figures_dir),
        *(sections.other_sweep(study, analysis, s) for s in study.sweeps if s not in sections.NAMED_SWEEPS),
        seeds_section(study, analysis),
        calibration_section(study, figures_dir),
        sections.failed(study),
    ]
    about = Section("How to read the tables", [METRIC_NOTE, "McNemar tests pair each run with the baseline "
                    "student of the same seed (and optimizer and objective where one exists) on the test images "
                    f"both predicted; p < {ALPHA} counts as a difference."])
    if study.problems:
        about.blocks.append("Missing or unreadable files (their parts are skipped): " + "; ".join(study.problems)
                            + ".")
    # the summary reads the same cached intervals and tests as the tables, so they agree
    claims = claims_section(study, analysis, figures_dir)
    return Report(f"dermkd study report: {study.root.name}", [claims, summary_section(study, analysis), about, *body])


def write_report(study_dir: Path, out_dir: Path | None = None, *, latency_reps: int = 20) -> Path:
    """Write report.html, report.md and figures for `study_dir`; returns the HTML path.

    `latency_reps`: timed forward passes per model for the CPU latency columns.
    """
    study_dir = Path(study_dir)
    out_dir = Path(out_dir) if out_dir is not None else study_dir / "report"
    report = build_report(load_study_dir(study_dir), out_dir, CostMeter(reps=latency_reps))
    html_path = out_dir / "report.html"
    write_text(html_path, render_html(report))
    write_text(out_dir / "report.md", render_markdown(report, out_dir))
    return html_path
