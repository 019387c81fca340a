"""Churn in the console: a member's risk band and reasons, and the churn model's report card."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from patron.analytics.artefacts import BuildReader
from patron.churn.features import FEATURES as CHURN_FEATURES
from patron.churn.schemas import ChurnReport, ScoreMetricsRead
from patron.console.i18n import Translator, fmt_decimal, fmt_int, fmt_percent

__all__ = ["CHURN_SCORES", "REPORT_FILE", "RISK_BANDS", "churn_card", "reason_label", "risk_band", "risk_context"]

log = logging.getLogger(__name__)

RiskBand = Literal["low", "medium", "high"]
RISK_BANDS: tuple[tuple[RiskBand, float], ...] = (("low", 0.0), ("medium", 0.3), ("high", 0.6))  # band, from
# The report's file in a build directory (patron.churn.service.REPORT_FILE; that module loads the model's
# libraries, which serving pages does not need).
REPORT_FILE = "churn.json"
# The scores the card compares, as the report names them: the model and the two baselines.
CHURN_SCORES: tuple[str, ...] = ("model", "p_alive", "recency")


def risk_band(risk: float) -> RiskBand:
    """``low`` below 30 %, ``medium`` below 60 %, ``high`` from 60 %."""
    band: RiskBand = "low"
    for name, lower in RISK_BANDS:
        if risk >= lower:
            band = name
    return band


def reason_label(code: str, translate: Translator) -> str:
    """A churn reason code (a churn feature name) in words; an unknown code is shown as it is."""
    return translate(f"churn.reason.{code}") if code in CHURN_FEATURES else code


def risk_context(
    reader: BuildReader, risk: float | None, reasons: list[str], translate: Translator
) -> dict[str, Any] | None:
    """The member page's churn block, or None when the build scored no risk for the member."""
    if risk is None:
        return None
    band = risk_band(risk)
    report = _report(reader)
    return {
        "horizon": None if report is None else report.horizon_days,
        "value": risk,
        "text": fmt_percent(risk),
        "width": f"{min(max(risk, 0.0), 1.0) * 100:.1f}",
        "band": band,
        "band_label": translate(f"churn.band.{band}"),
        "reasons": [{"code": code, "label": reason_label(code, translate)} for code in reasons],
    }


def _report(reader: BuildReader) -> ChurnReport | None:
    path = Path(reader.manifest["path"]) / REPORT_FILE
    if not path.is_file():
        return None
    try:
        return ChurnReport.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:  # a report that does not parse is shown like a missing one
        log.warning("churn report unreadable", extra={"build_id": reader.build_id})
        return None


def _number(value: float | None, places: int = 3) -> str:
    return "—" if value is None else fmt_decimal(value, places)


def _score_rows(report: ChurnReport, translate: Translator) -> list[dict[str, Any]]:
    scored = [(name, report.metrics.get(name)) for name in CHURN_SCORES]
    present = [(name, m) for name, m in scored if m is not None]
    best = max((m.auc for _, m in present if m.auc is not None), default=None)
    return [
        {
            "key": name,
            "label": translate(f"churn.score.{name}"),
            "auc": _number(m.auc),
            "precision": "—" if m.precision_top_decile is None else fmt_percent(m.precision_top_decile),
            "brier": _number(m.brier),
            "best": m.auc is not None and m.auc == best,
        }
        for name, m in present
    ]


def _calibration(metrics: ScoreMetricsRead | None) -> list[list[float]]:
    if metrics is None:
        return []
    return [[round(b.mean_predicted, 4), round(b.observed_rate, 4)] for b in metrics.calibration]


def churn_card(reader: BuildReader, translate: Translator) -> dict[str, Any] | None:
    """How the churn model and its baselines scored on the later window; None when the build has no report."""
    report = _report(reader)
    if report is None:
        return None
    card: dict[str, Any] = {"status": report.status, "reason": report.reason, "horizon": report.horizon_days}
    if report.status != "ok" or report.validation is None:
        return card
    window = report.validation
    series = [
        {"key": name, "label": translate(f"churn.score.{name}"), "points": _calibration(report.metrics.get(name))}
        for name in ("model", "p_alive")
    ]
    return card | {
        "cut_off": window.cut_off.date().isoformat(),
        "members": fmt_int(window.members),
        "churn_rate": "—" if window.churn_rate is None else fmt_percent(window.churn_rate),
        "rows": _score_rows(report, translate),
        "chart": {
            "series": [s for s in series if s["points"]],
            "predictedLabel": translate("churn.calibration.predicted"),
            "observedLabel": translate("churn.calibration.observed"),
            "perfectLabel": translate("churn.calibration.perfect"),
        },
    }
