"""Reports of a comparison run: a Markdown table, a plain SVG bar chart and an HTML page holding both."""

from __future__ import annotations

import html
from pathlib import Path

from patron.recs.evaluation.harness import EvaluationReport, ModelResult

__all__ = ["COLUMNS", "html_page", "markdown_table", "svg_chart", "write_report"]

#: (field, header, format) of the table's figures.
COLUMNS = (
    ("map", "MAP@{k}", ".3f"),
    ("ndcg", "NDCG@{k}", ".3f"),
    ("precision", "P@{k}", ".3f"),
    ("recall", "R@{k}", ".3f"),
    ("coverage", "coverage", ".3f"),
    ("novelty", "novelty", ".2f"),
    ("diversity", "diversity", ".3f"),
    ("fit_seconds", "fit s", ".2f"),
    ("predict_seconds", "predict s", ".2f"),
)


def _cell(result: ModelResult, field: str, fmt: str) -> str:
    value = getattr(result, field)
    return "-" if value is None else format(value, fmt)


def title(report: EvaluationReport) -> str:
    """One line naming the data set, the protocol and the split's size."""
    kind = "repeats counted" if report.repeats_counted else "new items only"
    return (
        f"{report.dataset}, {report.protocol} ({kind}), K={report.k}: {report.evaluated_users:,} users evaluated, "
        f"{report.train_items:,} train items, {report.train_rows:,} train / {report.test_rows:,} test events"
    )


def markdown_table(report: EvaluationReport) -> str:
    """The results as a Markdown table, best NDCG marked in bold, failures with their error."""
    best = report.best()
    header = ["model", *(h.format(k=report.k) for _, h, _ in COLUMNS)]
    lines = [f"**{title(report)}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in report.results:
        if r.error is not None:
            lines.append(f"| {r.label} | failed: {r.error} |" + " |" * (len(header) - 2))
            continue
        cells = [_cell(r, f, fmt) for f, _, fmt in COLUMNS]
        if best is not None and r is best:
            cells[1] = f"**{cells[1]}**"
        lines.append("| " + " | ".join([r.label, *cells]) + " |")
    lines.append("")
    lines.append(f"Diversity is 1 - cosine of item {report.diversity_by} vectors within each list.")
    return "\n".join(lines) + "\n"


def svg_chart(report: EvaluationReport, metric: str = "ndcg") -> str:
    """A horizontal bar chart of one metric per model, as a standalone SVG document."""
    rows = [(r.label, float(getattr(r, metric) or 0.0)) for r in report.results if r.error is None]
    bar, gap, left, width = 22, 8, 190, 420
    height = 50 + len(rows) * (bar + gap)
    top = max((v for _, v in rows), default=0.0) or 1.0
    label = metric.upper() if metric in {"ndcg", "map"} else metric
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(label)}@{report.k}: '
        f"{html.escape(report.dataset)} ({html.escape(report.protocol)})</text>",
    ]
    for n, (name, value) in enumerate(rows):
        y = 35 + n * (bar + gap)
        length = width * value / top
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{html.escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" fill="#4a78b5"/>')
        parts.append(f'<text x="{left + length + 5:.1f}" y="{y + 15}">{value:.3f}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def html_page(report: EvaluationReport) -> str:
    """A self-contained HTML page: the chart and an HTML table of every figure."""
    header = "".join(f"<th>{html.escape(h.format(k=report.k))}</th>" for _, h, _ in COLUMNS)
    body = []
    for r in report.results:
        if r.error is not None:
            body.append(
                f"<tr><td>{html.escape(r.label)}</td><td colspan='{len(COLUMNS)}'>failed: "
                f"{html.escape(r.error)}</td></tr>"
            )
            continue
        cells = "".join(f"<td>{_cell(r, f, fmt)}</td>" for f, _, fmt in COLUMNS)
        body.append(f"<tr><td>{html.escape(r.label)}</td>{cells}</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Recommender evaluation</title></head><body>"
        f"<h1>{html.escape(title(report))}</h1>{svg_chart(report)}"
        f"<table border='1' cellpadding='4'><tr><th>model</th>{header}</tr>{''.join(body)}</table></body></html>\n"
    )


def write_report(report: EvaluationReport, path: Path) -> list[Path]:
    """Write the report by the suffix of ``path``: ``.md`` (with an ``.svg`` beside it), ``.svg`` or ``.html``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".svg":
        path.write_text(svg_chart(report), encoding="utf-8")
        return [path]
    if path.suffix in {".html", ".htm"}:
        path.write_text(html_page(report), encoding="utf-8")
        return [path]
    chart = path.with_suffix(".svg")
    chart.write_text(svg_chart(report), encoding="utf-8")
    path.write_text(markdown_table(report) + f"\n![NDCG@{report.k}]({chart.name})\n", encoding="utf-8")
    return [path, chart]
