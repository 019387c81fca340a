"""Console translations: one flat JSON catalog per language, identical keys.

Catalogs live in ``locales/<code>.json``, plus one file per domain in
``locales/<code>/<domain>.json`` (a key may be defined only once). Templates call ``t(<key>, name=value)``;
placeholders use ``{name}``. Keys that code assembles at run time (segment,
role, order-status, sort, event-type, funnel-option, churn-reason, cluster-trait,
behaviour and alert labels) are listed by :func:`dynamic_keys` so a test can
prove every catalog holds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import get_args

from patron.alerts.schemas import DeliveryStatus, Kind
from patron.alerts.series import METRICS as ALERT_METRICS
from patron.analytics.cohort import CohortMetric, CohortPeriod
from patron.analytics.rfm import LIFECYCLE_STAGES, SEGMENTS
from patron.analytics.service import FUNNEL_BREAKDOWNS
from patron.auth.rules import ROLES
from patron.churn.features import FEATURES as CHURN_FEATURES
from patron.members.service import SORTS
from patron.tags.behaviour import DISCOUNT_SENSITIVITIES, PRICE_BANDS

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_LANGUAGE",
    "DELIVERY_STATUSES",
    "DISCOUNT_SENSITIVITIES",
    "EVENT_TYPES",
    "LANGUAGES",
    "ORDER_STATUSES",
    "PRICE_BANDS",
    "Translator",
    "catalog",
    "dynamic_keys",
    "fmt_decimal",
    "fmt_int",
    "fmt_percent",
    "negotiate",
]

LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"
ORDER_STATUSES: tuple[str, ...] = ("completed", "cancelled")
PERIODS: tuple[CohortPeriod, ...] = ("month", "week")
METRICS: tuple[CohortMetric, ...] = ("members", "revenue")
EVENT_TYPES: tuple[str, ...] = ("view", "fav", "cart", "purchase")  # the common types, named in each language
ALERT_KINDS: tuple[Kind, ...] = get_args(Kind)
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)
_LOCALES = Path(__file__).with_name("locales")


@cache
def catalog(language: str) -> dict[str, str]:
    """Return the messages of one language (read once per process)."""
    if language not in LANGUAGES:
        raise KeyError(f"no catalog for language {language!r}")
    raw: dict[str, str] = json.loads((_LOCALES / f"{language}.json").read_text(encoding="utf-8"))
    # Domains may keep their messages apart, in locales/<code>/<domain>.json; a key may be defined once.
    for part in sorted((_LOCALES / language).glob("*.json")):
        extra: dict[str, str] = json.loads(part.read_text(encoding="utf-8"))
        clash = sorted(set(extra) & set(raw))
        if clash:
            raise KeyError(f"{part.name} redefines console messages: {', '.join(clash[:5])}")
        raw.update(extra)
    return raw


def dynamic_keys() -> set[str]:
    """Keys built at run time rather than written literally in templates."""
    keys = {f"segment.{name}" for name, _, _ in SEGMENTS} | {"segment.none"}
    keys |= {f"role.{role}" for role in ROLES}
    keys |= {f"lifecycle.{stage}" for stage in LIFECYCLE_STAGES}
    keys |= {f"order.status.{status}" for status in ORDER_STATUSES}
    keys |= {f"members.sort.{sort}" for sort in SORTS}
    keys |= {f"lang.{code}" for code in LANGUAGES}
    keys |= {f"event.{kind}" for kind in EVENT_TYPES}
    keys |= {f"funnels.breakdown.{name}" for name in FUNNEL_BREAKDOWNS}
    keys |= {f"funnels.order.{order}" for order in ("strict", "any")}
    keys |= {f"cohorts.{key}.{period}" for key in ("period", "index_axis") for period in PERIODS}
    keys |= {f"cohorts.{key}.{metric}" for key in ("metric", "heatmap_title", "heatmap_hint") for metric in METRICS}
    keys |= {f"segments.measure.{measure}" for measure in ("members", "monetary")}
    keys |= {f"duration.{unit}" for unit in ("seconds", "minutes", "hours", "days")}
    keys |= _intelligence_keys()
    keys |= _activation_keys()
    return keys


def _activation_keys() -> set[str]:
    """Labels of loyalty, promotions and recommendations (codes shown through the catalog)."""
    from patron.console.loyalty_view import LOYALTY_KEYS
    from patron.console.privacy_routes import PRIVACY_KEYS
    from patron.console.recs_routes import RECS_KEYS

    return LOYALTY_KEYS | RECS_KEYS | PRIVACY_KEYS


def _intelligence_keys() -> set[str]:
    """Labels of churn reasons and scores, cluster traits, behaviour tags and alerts."""
    # Imported here: the clustering module loads scikit-learn, which serving pages never need.
    from patron.analytics.clusters import TRAIT_WORDS

    keys = {f"churn.reason.{feature}" for feature in CHURN_FEATURES}
    keys |= {f"churn.band.{band}" for band in ("low", "medium", "high")}
    keys |= {f"churn.score.{score}" for score in ("model", "p_alive", "recency")}
    keys |= {f"clusters.trait.{feature}.{direction}" for feature, direction in TRAIT_WORDS}
    keys |= {f"price_band.{band}" for band in PRICE_BANDS}
    keys |= {f"discount_sensitivity.{level}" for level in DISCOUNT_SENSITIVITIES}
    keys |= {f"weekday.{day}" for day in range(7)}
    keys |= {f"alerts.metric.{metric}" for metric in ALERT_METRICS}
    keys |= {f"alerts.kind.{kind}" for kind in ALERT_KINDS}
    keys |= {f"alerts.delivery.{status}" for status in DELIVERY_STATUSES}
    keys |= {f"alerts.compare_to.{baseline}" for baseline in ("previous_day", "same_weekday")}
    keys |= {f"alerts.direction.{direction}" for direction in ("both", "up", "down")}
    keys |= {f"tags.invalid.{name}" for name in ("name", "rule", "description")}
    keys |= {f"forecasts.level.{level}" for level in ("product", "category")}
    return keys


def _language_of(tag: str) -> str | None:
    """Map one Accept-Language tag to a supported language."""
    tag = tag.strip().lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"  # the only Chinese catalog; closer to Traditional readers than English
    return None


def _quality(param: str) -> float:
    name, _, value = param.strip().partition("=")
    if name.strip().lower() != "q":
        return 1.0
    try:
        return max(0.0, min(1.0, float(value)))
    except ValueError:
        return 0.0


def negotiate(accept_language: str | None) -> str:
    """Pick the best supported language for an Accept-Language header, else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, *params = item.split(";")
        language = _language_of(tag)
        quality = min((_quality(p) for p in params), default=1.0)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def fmt_int(value: int | float) -> str:
    """Whole number with thousands separators: ``19,838``."""
    return f"{round(value):,}"


def fmt_decimal(value: float, places: int = 2) -> str:
    """Amount with thousands separators and fixed decimals; currency-neutral."""
    return f"{value:,.{places}f}"


def fmt_percent(value: float, places: int = 1) -> str:
    """Format a share in [0, 1] as a percentage: ``64.8%``."""
    return f"{value * 100:.{places}f}%"


@dataclass(frozen=True)
class Translator:
    """Looks up messages in one language, falling back to English, then the key."""

    language: str

    def __call__(self, key: str, /, **values: object) -> str:
        message = catalog(self.language).get(key) or catalog(DEFAULT_LANGUAGE).get(key) or key
        return message.format(**values) if values else message

    def plural(self, key: str, count: int, /, **values: object) -> str:
        """``key_one`` for a count of one, else ``key_other``; ``{count}`` is formatted."""
        suffix = "one" if count == 1 else "other"
        return self(f"{key}_{suffix}", count=fmt_int(count), **values)

    def segment(self, name: str | None) -> str:
        return self(f"segment.{name}" if name else "segment.none")

    def lifecycle(self, stage: str | None) -> str | None:
        return self(f"lifecycle.{stage}") if stage in LIFECYCLE_STAGES else stage

    def role(self, role: str) -> str:
        return self(f"role.{role}") if role in ROLES else role

    def status(self, status: str) -> str:
        return self(f"order.status.{status}") if status in ORDER_STATUSES else status

    def event_type(self, event_type: str) -> str:
        """``view`` -> "View" / "浏览"; types without a name are shown as they are."""
        return self(f"event.{event_type}") if event_type in EVENT_TYPES else event_type

    def duration(self, seconds: float | None) -> str:
        """A time span in its largest fitting unit: ``45 s``, ``5.3 min``, ``2.4 h``, ``3.5 d``."""
        if seconds is None:
            return "—"
        for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
            if seconds >= size:
                return self(f"duration.{unit}", n=_short(seconds / size))
        return self("duration.seconds", n=_short(seconds))


def _short(value: float) -> str:
    """One decimal, none when whole: ``2``, ``2.5``."""
    return f"{value:.0f}" if round(value, 1) == round(value) else f"{value:.1f}"
