"""A view -> cart -> purchase funnel over 10M events: Patron's funnel_table against pandas.

The events (default 10,000,000 rows, the warehouse's ``events`` schema) are simulated once, seeded and
vectorised, and written to Parquet in ``--home`` (kept between runs): about one member per ten events,
shopping sessions over 60 days on four channels and eight categories, each session a few views, sometimes a
favourite, sometimes a cart and then sometimes a purchase; 3% of sessions are guests.

Four funnels, window 24 h: strict order, strict order by channel, any order, strict order with ``fav`` as an
exclusion step. Patron: ``funnel_table`` over an Ibis DuckDB view of the Parquet file (Patron's connection
settings; DuckDB uses every core), then again over a DuckDB table loaded from the file, which is how the
warehouse holds events. pandas: the same semantics written with ``sort_values``, ``groupby`` and
``merge_asof`` (``bench/_funnel_reference.py``) on the file read once with ``read_parquet``. Every time is the
best of ``--repeat`` runs. Each side runs in its own process, so each peak memory is its own. The script stops
with an error unless both sides give the same members at every step and the same shares and medians.
Run::

    .venv/bin/python bench/funnel_events.py --events 10000000 --home /tmp/patron-bench-funnel
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: a BLAS thread pool would only compete

import argparse
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import best_of, machine, peak_rss_mib, python, timed

from patron.analytics.funnel import Step
from patron.demo.vocab import CATEGORIES, CATEGORY_PRODUCT_SHARE
from patron.warehouse.schema import TABLES

SOURCE = "bench"
STEPS = [Step("view"), Step("cart"), Step("purchase")]
WINDOW = timedelta(hours=24)
VARIANTS: dict[str, dict[str, Any]] = {
    "strict": {},
    "strict by channel": {"breakdown": "channel"},
    "any order": {"order": "any"},
    "strict, fav excluded": {"exclusions": [Step("fav")]},
}
COLUMNS = ["member_key", "event_type", "occurred_at", "channel"]  # what the funnels read

DAYS = 60
ORIGIN = np.datetime64("2024-03-01T00:00:00", "us")
CHANNELS = (("app", 0.50), ("mini-program", 0.30), ("web", 0.15), ("h5", 0.05))
EVENT_TYPES = ("view", "fav", "cart", "purchase")
VIEW, FAV, CART, PURCHASE = range(4)
# Share of sessions starting in each hour of the day: quiet nights, an evening peak.
HOURLY = np.array([2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 6, 6, 6, 6, 6, 7, 8, 9, 9, 7, 4], dtype=np.float64)
PRODUCTS = 40_000
GUEST_SHARE = 0.03
MORE_VIEWS = 0.65  # after each view, another one with this chance: 1 / (1 - 0.65) = 2.9 views a session
FAV_SHARE, CART_SHARE, BUY_AFTER_CART = 0.08, 0.22, 0.45
GAP_SECONDS = 50.0  # mean time between two events of a session


# -- the events -----------------------------------------------------------------------------------


def _keys(prefix: str, numbers: np.ndarray[Any, Any], width: int) -> pa.Array:
    """Keys ``bench:<prefix><n>`` with n zero-padded to ``width`` digits."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(f"{SOURCE}:{prefix}", digits, "")


def _member_keys(rng: np.random.Generator, count: int) -> pa.Array:
    """Opaque keys like the warehouse's: ``m`` and 16 hex digits."""
    value = rng.integers(0, np.iinfo(np.uint64).max, size=count, dtype=np.uint64, endpoint=True)
    nibbles = (value[:, None] >> np.arange(60, -4, -4, dtype=np.uint64)) & np.uint64(15)
    text = np.empty((count, 17), dtype=np.uint8)
    text[:, 0] = ord("m")
    text[:, 1:] = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles]
    return pa.array(text.view("S17").ravel()).cast(pa.string())


def _weighted(rng: np.random.Generator, weights: np.ndarray[Any, Any], size: int) -> np.ndarray[Any, Any]:
    return np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(size), side="right")


def _sessions(rng: np.random.Generator, count: int, members: int) -> dict[str, np.ndarray[Any, Any]]:
    """Who, when, where and what each session is; ``member`` -1 is a guest."""
    activity = rng.gamma(0.7, size=members)  # a few very active members, many occasional ones
    member = _weighted(rng, activity, count)
    member[: min(members, count)] = np.arange(min(members, count))  # everyone browses at least once
    member[rng.random(count) < GUEST_SHARE] = -1
    hour = _weighted(rng, HOURLY, count)
    start = rng.integers(0, DAYS, count) * 86_400 + hour * 3_600 + rng.integers(0, 3_600, count)
    views = rng.geometric(1.0 - MORE_VIEWS, count)
    cart = rng.random(count) < CART_SHARE
    return {
        "member": member,
        "start": start,
        "channel": _weighted(rng, np.array([w for _, w in CHANNELS]), count),
        "category": _weighted(rng, np.array(CATEGORY_PRODUCT_SHARE), count),
        "views": views,
        "fav": rng.random(count) < FAV_SHARE,
        "cart": cart,
        "purchase": cart & (rng.random(count) < BUY_AFTER_CART),
    }


def _session_events(rng: np.random.Generator, s: dict[str, np.ndarray[Any, Any]], rows: int) -> dict[str, Any]:
    """The first ``rows`` events of the sessions ``s``: session, type and seconds after ORIGIN.

    Inside a session the views and the favourite come in random order; the cart comes at a random point
    and the purchase, if any, after it. Gaps are whole seconds, so some events share a second.
    """
    size = s["views"] + s["fav"] + s["cart"] + s["purchase"]
    session = np.repeat(np.arange(size.size), size)[:rows]
    offset = np.cumsum(size) - size
    position = np.arange(session.size) - offset[session]
    views, fav, cart = s["views"][session], s["fav"][session], s["cart"][session]
    kind = np.full(session.size, PURCHASE, dtype=np.int8)
    kind[position < views + fav + cart] = CART
    kind[position < views + fav] = FAV
    kind[position < views] = VIEW
    place = rng.random(session.size)
    bought = np.flatnonzero(kind == PURCHASE)  # the session's cart is the event just before
    place[bought] = place[bought - 1] + (1.0 - place[bought - 1]) * place[bought]
    order = np.lexsort((place, session))
    kind = kind[order]
    gap = np.floor(rng.exponential(GAP_SECONDS, session.size)).astype(np.int64)
    gap[position == 0] = 0
    elapsed = np.cumsum(gap)
    elapsed -= elapsed[offset[session]]
    return {"session": session, "kind": kind, "seconds": s["start"][session] + elapsed}


def _products(rng: np.random.Generator, category: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A product of the session's category (one event in ten strays to another), popular ones more often."""
    category = np.where(rng.random(category.size) < 0.1, rng.integers(0, len(CATEGORIES), category.size), category)
    per_category = np.floor(np.array(CATEGORY_PRODUCT_SHARE) * PRODUCTS).astype(np.int64)
    first = np.cumsum(per_category) - per_category
    rank = np.floor(per_category[category] * rng.random(category.size) ** 3).astype(np.int64)
    return first[category] + rank


def generate_events(rows: int, seed: int) -> pa.Table:
    """``rows`` events in the warehouse's ``events`` schema, in time order; the same for the same seed."""
    rng = np.random.default_rng(seed)
    members = max(rows // 10, 10)
    per_session = 1.0 / (1.0 - MORE_VIEWS) + FAV_SHARE + CART_SHARE * (1.0 + BUY_AFTER_CART)
    s = _sessions(rng, int(rows / per_session * 1.1) + 100, members)
    if int((s["views"] + s["fav"] + s["cart"] + s["purchase"]).sum()) < rows:
        raise RuntimeError("too few sessions drawn for the events asked for")
    e = _session_events(rng, s, rows)
    product = _products(rng, s["category"][e["session"]])
    product_category = np.repeat(
        np.arange(len(CATEGORIES)), np.floor(np.array(CATEGORY_PRODUCT_SHARE) * PRODUCTS).astype(np.int64)
    )
    chrono = np.argsort(e["seconds"], kind="stable")
    session, member = e["session"][chrono], s["member"][e["session"][chrono]]
    product = product[chrono]
    columns = {
        "event_key": _keys("E", np.arange(1, rows + 1), 10),
        "source": pa.repeat(pa.scalar(SOURCE), rows),
        "member_key": _member_keys(rng, members).take(pa.array(member, mask=member < 0)),
        "session_id": _keys("S", session + 1, 9),
        "product_key": _keys("P", product + 1, 6),
        "category": pa.array(CATEGORIES).take(product_category[product]),
        "event_type": pa.array(EVENT_TYPES).take(e["kind"][chrono]),
        "occurred_at": ORIGIN + e["seconds"][chrono] * np.timedelta64(1, "s"),
        "channel": pa.array([c for c, _ in CHANNELS]).take(s["channel"][session]),
    }
    return pa.table(columns).cast(TABLES["events"].to_pyarrow())


def prepare(home: Path, rows: int, seed: int) -> Path:
    """The Parquet file of the events, generated unless ``home`` has it already."""
    path = home / f"events-{rows}-seed{seed}.parquet"
    if path.exists():
        say(f"reusing {path}")
        return path
    home.mkdir(parents=True, exist_ok=True)
    events, generate_s = timed(lambda: generate_events(rows, seed))
    partial = path.with_suffix(".partial")
    _, write_s = timed(lambda: pq.write_table(events, partial))
    partial.rename(path)
    say(f"generated in {generate_s:.1f} s, written in {write_s:.1f} s ({path.stat().st_size / 2**20:,.0f} MiB)")
    return path


def describe(path: Path) -> dict[str, int]:
    """Rows, members and events of each type in the file (through DuckDB, for the report)."""
    from patron.warehouse.store import connect_duckdb

    con = connect_duckdb()
    try:
        t = con.read_parquet(path)
        counts = t.group_by("event_type").aggregate(n=t.count()).to_pyarrow().to_pylist()
        shape = {row["event_type"]: int(row["n"]) for row in counts}
        shape["members"] = int(t.member_key.nunique().to_pyarrow().as_py())
        shape["rows"] = int(t.count().to_pyarrow().as_py())
    finally:
        con.disconnect()
    return shape


# -- one side of the comparison, in its own process -----------------------------------------------


def _rows(frame: Any) -> list[dict[str, Any]]:
    """The funnel rows as plain values, with NaN as None."""
    records: list[dict[str, Any]] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in records]


def own_peak_mib() -> float:
    """This process's peak resident memory since it started its program.

    ``ru_maxrss`` would not do: across ``exec`` it keeps the peak of the parent that forked the process.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return peak_rss_mib()


def _timed_funnels(events: Any, repeat: int) -> dict[str, Any]:
    from patron.analytics.funnel import funnel_table

    out = {}
    for name, options in VARIANTS.items():
        table, seconds = best_of(
            repeat, lambda options=options: funnel_table(events, STEPS, window=WINDOW, **options).to_pandas()
        )
        out[name] = {"seconds": seconds, "rows": _rows(table)}
    return out


def patron_side(path: Path, repeat: int) -> dict[str, Any]:
    """The funnels over a view of the Parquet file, then over a DuckDB table loaded from it (as in the warehouse)."""
    from patron.warehouse.store import connect_duckdb

    con = connect_duckdb()
    out: dict[str, Any] = {"variants": _timed_funnels(con.read_parquet(path, table_name="events"), repeat)}
    out["peak_rss_mib"] = own_peak_mib()  # before the table: the peak of the funnels over the file
    table, out["load_s"] = timed(lambda: con.create_table("events_loaded", con.table("events")))
    out["loaded"] = _timed_funnels(table, repeat)
    out["peak_rss_loaded_mib"] = own_peak_mib()
    con.disconnect()
    return out


def pandas_side(path: Path, repeat: int) -> dict[str, Any]:
    import pandas as pd
    from _funnel_reference import pandas_funnel

    frame, load_s = timed(lambda: pd.read_parquet(path, columns=COLUMNS))
    out: dict[str, Any] = {"load_s": load_s, "variants": {}}
    for name, options in VARIANTS.items():
        table, seconds = best_of(repeat, lambda options=options: pandas_funnel(frame, STEPS, window=WINDOW, **options))
        out["variants"][name] = {"seconds": seconds, "rows": _rows(table)}
    out["peak_rss_mib"] = own_peak_mib()
    return out


def run_side(side: str, path: Path, repeat: int) -> dict[str, Any]:
    args = [python(), __file__, "--side", side, "--parquet", str(path), "--repeat", str(repeat)]
    done = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- comparison and report ------------------------------------------------------------------------


def differences(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[str]:
    """Where two funnel tables differ: members exactly, shares and medians to 1e-9 relative."""
    if len(ours) != len(theirs):
        return [f"{len(ours)} rows against {len(theirs)}"]
    found = []
    for a, b in zip(ours, theirs, strict=True):
        for key in ("breakdown", "step", "step_name", "members"):
            if a[key] != b[key]:
                found.append(f"{key}: {a} against {b}")
        for key in ("conversion_from_previous", "conversion_from_first", "median_seconds"):
            x, y = a[key], b[key]
            if (x is None) != (y is None) or (x is not None and abs(x - y) > 1e-9 * max(1.0, abs(x))):
                found.append(f"{key}: {a} against {b}")
    return found


JSON_OUTPUT = False  # with --json, progress and the table go to stderr and stdout has only the document


def say(text: str) -> None:
    print(text, file=sys.stderr if JSON_OUTPUT else sys.stdout, flush=True)


def report(shape: dict[str, int], patron: dict[str, Any], pandas: dict[str, Any]) -> list[dict[str, Any]]:
    """Print the table; the ratios are pandas' time over Patron's on the Parquet file and on the loaded table."""
    lines = []
    for name in VARIANTS:
        ours = patron["variants"][name]
        reached = "/".join(f"{sum(r['members'] for r in ours['rows'] if r['step'] == k):,}" for k in (1, 2, 3))
        seconds = (ours["seconds"], patron["loaded"][name]["seconds"], pandas["variants"][name]["seconds"])
        lines.append({"variant": name, "seconds": seconds, "steps": reached})
    lines.append({"variant": "load the file", "seconds": (None, patron["load_s"], pandas["load_s"]), "steps": ""})
    totals = [sum(v["seconds"] for v in side.values()) for side in (patron["variants"], patron["loaded"])]
    totals.append(sum(v["seconds"] for v in pandas["variants"].values()))
    everything = (totals[0], patron["load_s"] + totals[1], pandas["load_s"] + totals[2])
    lines.append({"variant": "load + all four", "seconds": everything, "steps": ""})
    say(
        f"\n{'events':>11} {'variant':<21} {'Patron s':>9} {'table s':>8} {'pandas s':>9} "
        f"{'ratio':>6} {'table':>6}  steps reached"
    )
    for line in lines:
        on_file, on_table, theirs = line["seconds"]
        line["ratio"] = theirs / on_file if on_file else None
        line["ratio_table"] = theirs / on_table
        shown = [f"{x:.2f}" if x is not None else "-" for x in line["seconds"]]
        ratios = [f"{x:.1f}x" if x is not None else "-" for x in (line["ratio"], line["ratio_table"])]
        say(
            f"{shape['rows']:>11,} {line['variant']:<21} {shown[0]:>9} {shown[1]:>8} {shown[2]:>9} "
            f"{ratios[0]:>6} {ratios[1]:>6}  {line['steps']}"
        )
    say(
        f"peak RSS: Patron on the file {patron['peak_rss_mib']:,.0f} MiB "
        f"(with the loaded table {patron['peak_rss_loaded_mib']:,.0f} MiB), pandas {pandas['peak_rss_mib']:,.0f} MiB"
    )
    return lines


def main() -> int:
    global JSON_OUTPUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", type=Path, default=Path("/tmp/patron-bench-funnel"))
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of each funnel, each side")
    parser.add_argument("--json", action="store_true", help="print the results as JSON (progress goes to stderr)")
    parser.add_argument("--side", choices=["patron", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side = patron_side if args.side == "patron" else pandas_side
        print(json.dumps(side(args.parquet, args.repeat)))
        return 0
    JSON_OUTPUT = args.json
    started = datetime.now()
    say(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}; started {started:%Y-%m-%d %H:%M}")
    path = prepare(args.home, args.events, args.seed)
    shape = describe(path)
    say(", ".join(f"{key} {value:,}" for key, value in shape.items()))
    say("Patron: funnel_table on DuckDB over the Parquet file ...")
    patron = run_side("patron", path, args.repeat)
    say("pandas: read_parquet, then sort_values, groupby and merge_asof ...")
    pandas = run_side("pandas", path, args.repeat)
    wrong = {
        f"{name}{where}": found
        for name in VARIANTS
        for where, ours in ((" (file)", patron["variants"]), (" (table)", patron["loaded"]))
        if (found := differences(ours[name]["rows"], pandas["variants"][name]["rows"]))
    }
    if wrong:
        for name, found in wrong.items():
            print(f"MISMATCH in '{name}':", *found[:20], sep="\n  ", file=sys.stderr)
        return 1
    lines = report(shape, patron, pandas)
    say(f"same members at every step and the same medians in all {len(VARIANTS)} funnels")
    if JSON_OUTPUT:
        document = {
            "machine": machine(),
            "load_average": os.getloadavg(),
            "started": started.isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "events": shape,
            "repeat": args.repeat,
            "lines": lines,
            "peak_rss_mib": {
                "patron": patron["peak_rss_mib"],
                "patron_with_loaded_table": patron["peak_rss_loaded_mib"],
                "pandas": pandas["peak_rss_mib"],
            },
            "funnels": {name: patron["variants"][name]["rows"] for name in VARIANTS},
        }
        print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
