"""Online-retail import end to end: Patron against the pandas code an analyst would write.

Both parse the 541,909-line file, validate it with the same rules (bad dates and numbers, zero quantities,
negative prices, stock write-offs), normalise it into orders and lines and persist the result (Patron: the
warehouse and operational store; pandas: Parquet files). Run::

    .venv/bin/python bench/import_online_retail.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from _common import DATA, best_of, command_seconds, machine, section

FILE = DATA / "online_retail" / "online_retail.csv.gz"


def patron_import(home: Path) -> int:
    from patron.ingest.service import run_import
    from patron.runtime import Runtime
    from patron.settings import PLACEHOLDER_MASTER_KEY, Settings

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    runtime = Runtime(Settings(home=home, env="development", master_key=PLACEHOLDER_MASTER_KEY))
    runtime.store.migrate()
    try:
        return run_import(runtime, "online-retail", FILE).rows_imported
    finally:
        runtime.close()


def pandas_import(out: Path) -> int:
    import pandas as pd

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    df = pd.read_csv(FILE, dtype=str, keep_default_na=False)
    df["row"] = range(1, len(df) + 1)
    qty = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    when = pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    cancelled = df["InvoiceNo"].str.startswith("C")
    bad = qty.isna() | price.isna() | when.isna() | (qty == 0) | (price < 0)
    bad |= ((qty < 0) & ~cancelled) | ((qty > 0) & cancelled) | (df["InvoiceNo"] == "") | (df["StockCode"] == "")
    df[bad].to_parquet(out / "quarantine.parquet")
    good = df[~bad].assign(Quantity=qty[~bad], UnitPrice=price[~bad], InvoiceDate=when[~bad])
    good["CustomerID"] = good["CustomerID"].str.replace(r"\.0+$", "", regex=True).replace("", None)
    good["line_no"] = good.groupby("InvoiceNo").cumcount() + 1
    good["amount"] = good["Quantity"] * good["UnitPrice"]
    orders = good.groupby("InvoiceNo").agg(
        customer=("CustomerID", "first"), ordered_at=("InvoiceDate", "min"), amount=("amount", "sum")
    )
    orders["status"] = orders.index.to_series().str.startswith("C").map({True: "cancelled", False: "completed"})
    members = (
        good.dropna(subset=["CustomerID"])
        .groupby("CustomerID")
        .agg(signup_at=("InvoiceDate", "min"), region=("Country", "last"))
    )
    products = good.groupby("StockCode").agg(
        title=("Description", lambda s: s.mode().iloc[0] if len(s.mode()) else None)
    )
    good.to_parquet(out / "order_lines.parquet")
    orders.to_parquet(out / "orders.parquet")
    members.to_parquet(out / "members.parquet")
    products.to_parquet(out / "products.parquet")
    return len(good)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="patron-bench-"))
    try:
        with section("Patron import (in process: parse, validate, normalise, persist)"):
            patron_rows, patron_s = best_of(args.runs, lambda: patron_import(work / "patron"))
            print(f"rows imported {patron_rows:,}; best of {args.runs}: {patron_s:.2f} s")
        with section("pandas (read_csv, to_datetime, masks, groupby, to_parquet)"):
            pandas_rows, pandas_s = best_of(args.runs, lambda: pandas_import(work / "pandas"))
            print(f"rows kept {pandas_rows:,}; best of {args.runs}: {pandas_s:.2f} s")
        with section("`patron init` + `patron import online-retail` as a command (includes interpreter start)"):
            env = {**os.environ, "PATRON_HOME": str(work / "cli"), "PATRON_ENV": "development"}
            patron = str(Path(__import__("sys").executable).parent / "patron")
            command_seconds([patron, "init"], env)
            cli_s = command_seconds([patron, "import", "online-retail", str(FILE), "--json"], env)
            print(f"{cli_s:.2f} s")
        assert patron_rows == pandas_rows, "both must keep the same rows"
        print(
            f"\nRESULT import: patron {patron_s:.2f} s, pandas {pandas_s:.2f} s, ratio pandas/patron "
            f"{pandas_s / patron_s:.2f}x; CLI end to end {cli_s:.2f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
