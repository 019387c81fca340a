"""Per-customer frequency, recency and age: the sufficient statistics of the CLV models.

Definitions follow lifetimes (and Fader, Hardie & Lee 2005), with calendar days as the purchase period:

- ``frequency`` (x): repeat purchase days, i.e. distinct days with a purchase minus one;
- ``recency`` (t_x): last purchase day minus first purchase day;
- ``T``: observation end minus first purchase day;
- ``monetary_value``: mean spend of the repeat purchase days (0 for one-time buyers);

with ``recency`` and ``T`` expressed in a chosen time unit (days, weeks or months of 365.25/12 days).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from patron.clv.schemas import FloatArray, HoldoutBucket, HoldoutEvaluation, TimeUnit
from patron.errors import ValidationError

__all__ = [
    "COLUMN_ALIASES",
    "DAYS_PER_UNIT",
    "CustomerSummary",
    "calibration_and_holdout",
    "evaluate_holdout",
    "summary_from_transactions",
]

DAYS_PER_UNIT: Mapping[TimeUnit, float] = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}
# lifetimes' names first, then Hardie's (x, t_x, zbar) as in cdnow_customers_summary_with_transactions.csv.
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    "frequency": ("frequency", "x"),
    "recency": ("recency", "t_x"),
    "T": ("T",),
    "monetary_value": ("monetary_value", "zbar", "m_x"),
}


def _column(name: str, values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValidationError(f"{name} has {int(np.sum(~np.isfinite(array)))} missing or infinite values", field=name)
    return array


@dataclass(frozen=True, eq=False)
class CustomerSummary:
    """Validated per-customer (frequency, recency, T[, monetary_value]) arrays, one row per customer."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray | None = None

    def __post_init__(self) -> None:
        for name in ("frequency", "recency", "T", "monetary_value"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _column(name, getattr(self, name)))
        x, t_x, age = self.frequency, self.recency, self.T
        if len(x) == 0:
            raise ValidationError("no customers: the summary is empty", field="frequency")
        for name, values in (("recency", t_x), ("T", age), ("monetary_value", self.monetary_value)):
            if values is not None and len(values) != len(x):
                raise ValidationError(f"{name} has {len(values)} rows, frequency has {len(x)}", field=name)
        if np.any(x < 0) or np.any(x != np.round(x)):
            raise ValidationError("frequency must be a whole number of repeat purchases >= 0", field="frequency")
        if np.any(t_x < 0):
            raise ValidationError(f"{int(np.sum(t_x < 0))} customers have a negative recency", field="recency")
        if np.any(t_x > age):
            raise ValidationError(f"{int(np.sum(t_x > age))} customers have recency greater than T", field="recency")
        if np.any((x == 0) & (t_x != 0)):
            raise ValidationError("customers without repeat purchases must have recency 0", field="recency")

    def __len__(self) -> int:
        return len(self.frequency)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, monetary: bool = False) -> CustomerSummary:
        """Read lifetimes' columns (or Hardie's x, t_x, zbar); extra columns such as an index are ignored."""
        values: dict[str, Any] = {}
        for name in ("frequency", "recency", "T", *(("monetary_value",) if monetary else ())):
            found = next((c for c in COLUMN_ALIASES[name] if c in frame.columns), None)
            if found is None:
                also = ", ".join(COLUMN_ALIASES[name][1:]) or "no alias"
                raise ValidationError(f"missing column {name!r} (also accepted: {also})", field=name)
            try:
                values[name] = pd.to_numeric(frame[found]).to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise ValidationError(f"column {found!r} is not numeric", field=name) from None
        return cls(**values)

    def require_repeat_customers(self) -> None:
        """Raise unless someone bought twice: without repeat purchases no purchase rate can be estimated."""
        if not np.any(self.frequency > 0):
            raise ValidationError("no customer has a repeat purchase (frequency > 0)", field="frequency")

    def repeat_customers(self) -> CustomerSummary:
        """The customers with at least one repeat purchase (what Gamma-Gamma is fitted on)."""
        keep = self.frequency > 0
        money = None if self.monetary_value is None else self.monetary_value[keep]
        return CustomerSummary(self.frequency[keep], self.recency[keep], self.T[keep], money)


def _purchase_days(
    transactions: pd.DataFrame, customer_col: str, datetime_col: str, monetary_col: str | None
) -> pd.DataFrame:
    for name in (customer_col, datetime_col, *((monetary_col,) if monetary_col else ())):
        if name not in transactions.columns:
            raise ValidationError(f"missing column {name!r}", field=name)
    when = pd.to_datetime(transactions[datetime_col])
    if when.dt.tz is not None:  # count calendar days where the purchases happened, not in UTC
        when = when.dt.tz_localize(None)
    days = pd.DataFrame(
        {
            "customer": transactions[customer_col].to_numpy(),
            "day": when.dt.normalize().to_numpy(),
            "spend": transactions[monetary_col].to_numpy(dtype=np.float64) if monetary_col else 0.0,
        }
    )
    if days["customer"].isna().any() or days["day"].isna().any():
        raise ValidationError("transactions without a customer or a date", field=customer_col)
    return days.groupby(["customer", "day"], sort=True)["spend"].sum().reset_index()


def _customer_days(
    transactions: pd.DataFrame, customer_col: str, datetime_col: str, monetary_col: str | None
) -> tuple[npt.NDArray[Any], pd.Index | None, pd.Series, FloatArray | None]:
    """Per row: a customer key, the purchase day (midnight) and the spend; plus what maps keys back.

    Integer customer ids are their own keys; other ids are replaced by their rank among the sorted distinct
    ids (``pd.factorize``, as pandas' group-by sorts them), and those ids are returned to map keys back.
    """
    for name in (customer_col, datetime_col, *((monetary_col,) if monetary_col else ())):
        if name not in transactions.columns:
            raise ValidationError(f"missing column {name!r}", field=name)
    when = pd.to_datetime(transactions[datetime_col])
    if when.dt.tz is not None:  # count calendar days where the purchases happened, not in UTC
        when = when.dt.tz_localize(None)
    day = pd.Series(when.dt.normalize().to_numpy())
    spend = transactions[monetary_col].to_numpy(dtype=np.float64) if monetary_col else None
    customer = pd.Series(transactions[customer_col].to_numpy())
    labels: pd.Index | None = None
    if customer.dtype.kind in "iu":
        key, missing_customer = customer.to_numpy(), False
    else:
        key, labels = pd.factorize(customer, sort=True)
        missing_customer = bool(np.any(key < 0))
    if missing_customer or day.isna().any():
        raise ValidationError("transactions without a customer or a date", field=customer_col)
    return key, labels, day, spend


def _starts(*keys: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Where a run of equal (sorted) keys begins."""
    start = np.zeros(len(keys[0]), dtype=bool)
    start[0] = True
    for key in keys:
        start[1:] |= key[1:] != key[:-1]
    return start


def summary_from_transactions(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_col: str | None = None,
    observation_end: str | pd.Timestamp | None = None,
    time_unit: TimeUnit = "weeks",
) -> pd.DataFrame:
    """One row per customer: frequency, recency, T (and monetary_value), indexed by customer.

    Purchases after ``observation_end`` (default: the last purchase day) are ignored; purchases on the same
    day count once, their spend added up.
    """
    key, labels, day, spend = _customer_days(transactions, customer_col, datetime_col, monetary_col)
    end = day.max() if observation_end is None else pd.Timestamp(observation_end).normalize()
    _ = day.iloc[:0] <= end  # the TypeError of comparing the whole column, e.g. with a time-zone-aware end
    if len(day) == 0 or pd.isna(end):
        raise ValidationError("no transactions on or before the observation end", field=datetime_col)
    end_day = int(np.asarray(end, dtype="datetime64[D]").astype(np.int64))
    day_number = day.to_numpy().astype("datetime64[D]").astype(np.int64)
    kept = day_number <= end_day
    if not kept.any():
        raise ValidationError("no transactions on or before the observation end", field=datetime_col)
    columns = {"customer": key[kept], "day": day_number[kept]}
    if spend is not None:
        columns["spend"] = spend[kept]
    # Sorted by customer then day, rows of one day in their original order (the order pandas adds them up in).
    rows = pl.DataFrame(columns).sort("customer", "day", maintain_order=True)
    customers, days = rows["customer"].to_numpy(), rows["day"].to_numpy()
    new_customer = _starts(customers)
    new_day = _starts(customers, days)
    first_row = np.flatnonzero(new_customer)
    last_row = np.append(first_row[1:] - 1, len(days) - 1)
    first, last = days[first_row].astype(np.float64), days[last_row].astype(np.float64)
    unit = DAYS_PER_UNIT[time_unit]
    ids = customers[first_row]
    index = pd.Index(ids, name=customer_col) if labels is None else labels.take(ids).rename(customer_col)
    summary = pd.DataFrame(
        {
            "frequency": np.add.reduceat(new_day.astype(np.int64), first_row) - 1,
            "recency": (last - first) / unit,
            "T": (end_day - first) / unit,
        },
        index=index,
    )
    if spend is not None:  # pandas' group-by sums and means, for the same rounding as before
        day_spend = pd.Series(rows["spend"].to_numpy()).groupby(np.cumsum(new_day) - 1).sum().to_numpy()
        customer_of_day = np.cumsum(new_customer)[new_day] - 1
        repeat = ~new_customer[new_day]
        means = pd.Series(day_spend[repeat]).groupby(customer_of_day[repeat]).mean()
        monetary_value = np.zeros(len(summary))
        monetary_value[means.index.to_numpy()] = means.to_numpy()
        summary["monetary_value"] = monetary_value
    return summary


def calibration_and_holdout(
    transactions: pd.DataFrame,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp,
    customer_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_col: str | None = None,
    time_unit: TimeUnit = "weeks",
) -> pd.DataFrame:
    """Calibration summary (``*_cal``) plus purchase days in the holdout, for customers seen in calibration.

    Columns: frequency_cal, recency_cal, T_cal[, monetary_value_cal], frequency_holdout (distinct purchase
    days in (calibration_end, observation_end]) and duration_holdout (that window in ``time_unit``).
    """
    cal_end, obs_end = pd.Timestamp(calibration_end).normalize(), pd.Timestamp(observation_end).normalize()
    if obs_end <= cal_end:
        raise ValidationError("observation_end must be after calibration_end", field="observation_end")
    summary = summary_from_transactions(
        transactions,
        customer_col=customer_col,
        datetime_col=datetime_col,
        monetary_col=monetary_col,
        observation_end=cal_end,
        time_unit=time_unit,
    ).add_suffix("_cal")
    days = _purchase_days(transactions, customer_col, datetime_col, None)
    holdout = days[(days["day"] > cal_end) & (days["day"] <= obs_end)].groupby("customer").size()
    summary["frequency_holdout"] = holdout.reindex(summary.index, fill_value=0).astype(np.int64)
    summary["duration_holdout"] = (obs_end - cal_end) / pd.Timedelta(days=1) / DAYS_PER_UNIT[time_unit]
    return summary


def evaluate_holdout(
    predicted: npt.ArrayLike, actual: npt.ArrayLike, frequency_cal: npt.ArrayLike, *, max_bucket: int = 7
) -> HoldoutEvaluation:
    """Mean predicted and actual holdout purchases per calibration frequency (0 .. max_bucket+), and overall.

    This is the comparison of Fader, Hardie & Lee (2005), figure 4: conditional expectations against the
    purchases actually made in the holdout period.
    """
    pred, act = _column("predicted", predicted), _column("actual", actual)
    freq = _column("frequency_cal", frequency_cal)
    if not len(pred) == len(act) == len(freq) or len(pred) == 0:
        raise ValidationError("predicted, actual and frequency_cal need the same, non-zero length", field="actual")
    bucket = np.minimum(freq, max_bucket).astype(np.int64)
    buckets = tuple(
        HoldoutBucket(
            frequency=int(k),
            customers=int(np.sum(bucket == k)),
            predicted_mean=float(pred[bucket == k].mean()),
            actual_mean=float(act[bucket == k].mean()),
        )
        for k in np.unique(bucket)
    )
    return HoldoutEvaluation(
        buckets=buckets,
        customers=len(pred),
        predicted_total=float(pred.sum()),
        actual_total=float(act.sum()),
        total_error=float(pred.sum() - act.sum()),
        mean_absolute_error=float(np.mean(np.abs(pred - act))),
    )
