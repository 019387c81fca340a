"""A first comparison of a placement's variants: CTR and conversion with confidence intervals.

Sufficient statistics are frozen data that add up; the tests are small pure
functions. A degenerate case (no trials, no variance) comes back as a result
with a ``reason`` rather than an exception.

* **CTR** = clicks / impressions (each impression a Bernoulli trial; clicks
  are capped at impressions).
* **Conversion** = units with a purchase / units with an impression (the unit,
  a member or a session, is what the assignment randomises).
* Each rate gets a **Wilson score interval** (Wilson 1927):
  ``(p̂ + z²/2n ± z·sqrt(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)``.
* A treatment is compared with the control by the **difference** of rates with
  an unpooled (Wald) interval ``d ± z·sqrt(p₁(1-p₁)/n₁ + p₀(1-p₀)/n₀)`` and a
  **two-proportion z-test** with the pooled rate,
  ``z = d / sqrt(p̄(1-p̄)(1/n₁ + 1/n₀))``, two-sided p-value ``2(1 - Φ(|z|))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel
from scipy.stats import norm  # type: ignore[import-untyped]

__all__ = [
    "ComparisonRead",
    "Difference",
    "MetricRead",
    "Proportion",
    "RateInterval",
    "VariantComparison",
    "VariantStats",
    "compare_variants",
    "difference",
    "wilson",
]


@dataclass(frozen=True)
class Proportion:
    """Successes out of trials; two add up."""

    successes: int
    trials: int

    def __add__(self, other: Proportion) -> Proportion:
        return Proportion(self.successes + other.successes, self.trials + other.trials)

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None


@dataclass(frozen=True)
class VariantStats:
    """What one variant collected: exposed units, events, converted units and revenue."""

    variant: str
    units: int = 0
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    converted_units: int = 0
    revenue: float = 0.0

    def __add__(self, other: VariantStats) -> VariantStats:
        return VariantStats(
            self.variant,
            self.units + other.units,
            self.impressions + other.impressions,
            self.clicks + other.clicks,
            self.purchases + other.purchases,
            self.converted_units + other.converted_units,
            self.revenue + other.revenue,
        )

    @property
    def ctr(self) -> Proportion:
        return Proportion(min(self.clicks, self.impressions), self.impressions)

    @property
    def conversion(self) -> Proportion:
        return Proportion(min(self.converted_units, self.units), self.units)


class RateInterval(BaseModel):
    """A rate with its Wilson interval; ``reason`` says why there is none."""

    successes: int
    trials: int
    rate: float | None
    low: float | None
    high: float | None
    reason: str | None = None


class Difference(BaseModel):
    """Treatment minus control: the difference with its interval, the z statistic and p-value."""

    difference: float | None
    low: float | None
    high: float | None
    z: float | None
    p_value: float | None
    reason: str | None = None


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return float(norm.ppf(0.5 + confidence / 2))


def wilson(p: Proportion, confidence: float = 0.95) -> RateInterval:
    """The Wilson score interval of a proportion."""
    if p.trials <= 0:
        return RateInterval(successes=p.successes, trials=0, rate=None, low=None, high=None, reason="no trials")
    z = _z(confidence)
    n, phat = p.trials, p.successes / p.trials
    centre = phat + z * z / (2 * n)
    spread = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return RateInterval(
        successes=p.successes,
        trials=n,
        rate=phat,
        low=max(0.0, (centre - spread) / denom),
        high=min(1.0, (centre + spread) / denom),
    )


def difference(control: Proportion, treatment: Proportion, confidence: float = 0.95) -> Difference:
    """Treatment minus control, its Wald interval and the pooled two-proportion z-test."""
    if control.trials <= 0 or treatment.trials <= 0:
        return Difference(difference=None, low=None, high=None, z=None, p_value=None, reason="no trials")
    p0, p1 = control.successes / control.trials, treatment.successes / treatment.trials
    diff = p1 - p0
    z_crit = _z(confidence)
    se = math.sqrt(p1 * (1 - p1) / treatment.trials + p0 * (1 - p0) / control.trials)
    pooled = (control.successes + treatment.successes) / (control.trials + treatment.trials)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / treatment.trials + 1 / control.trials))
    if se_pooled == 0:
        return Difference(difference=diff, low=diff, high=diff, z=None, p_value=None, reason="no variance")
    z = diff / se_pooled
    return Difference(
        difference=diff,
        low=diff - z_crit * se,
        high=diff + z_crit * se,
        z=z,
        p_value=float(2 * norm.sf(abs(z))),
    )


class MetricRead(BaseModel):
    """A rate of one variant and, for a treatment, its difference from the control."""

    rate: RateInterval
    vs_control: Difference | None = None


class VariantComparison(BaseModel):
    """One variant's counts, CTR and conversion."""

    variant: str
    is_control: bool
    units: int
    impressions: int
    clicks: int
    purchases: int
    converted_units: int
    revenue: float
    ctr: MetricRead
    conversion: MetricRead


class ComparisonRead(BaseModel):
    """Every variant of a placement compared with the control."""

    placement: str
    control: str | None
    confidence: float
    variants: list[VariantComparison]


def compare_variants(
    placement: str, stats: Sequence[VariantStats], control: str | None = None, confidence: float = 0.95
) -> ComparisonRead:
    """CTR and conversion per variant; each treatment against ``control`` (default: the first variant)."""
    control = control if control is not None else (stats[0].variant if stats else None)
    base = next((s for s in stats if s.variant == control), None)
    out: list[VariantComparison] = []
    for s in stats:
        is_control = s.variant == control
        vs_ctr = vs_conv = None
        if base is not None and not is_control:
            vs_ctr = difference(base.ctr, s.ctr, confidence)
            vs_conv = difference(base.conversion, s.conversion, confidence)
        out.append(
            VariantComparison(
                variant=s.variant,
                is_control=is_control,
                units=s.units,
                impressions=s.impressions,
                clicks=s.clicks,
                purchases=s.purchases,
                converted_units=s.converted_units,
                revenue=round(s.revenue, 2),
                ctr=MetricRead(rate=wilson(s.ctr, confidence), vs_control=vs_ctr),
                conversion=MetricRead(rate=wilson(s.conversion, confidence), vs_control=vs_conv),
            )
        )
    return ComparisonRead(placement=placement, control=control, confidence=confidence, variants=out)
