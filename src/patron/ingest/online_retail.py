"""UCI Online Retail invoice lines (InvoiceNo, StockCode, ... CustomerID, Country).

Choices, documented in docs/import.md:

- each row is one order line, keyed by invoice and its position in the invoice
  (file order), so lines that repeat another line exactly are kept as real lines;
- rows without CustomerID are guest lines: imported into guest orders (no
  member), counted in GMV, left out of member profiles;
- invoices starting with ``C`` are cancellations: imported with status
  ``cancelled`` and negative quantities, left out of sales and RFM;
- quarantined: missing or unparseable fields, a zero quantity, a negative unit
  price (bad-debt adjustments), a negative quantity outside a cancellation
  (stock write-offs, not sales) and a positive one inside a cancellation.
"""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from patron.ingest.contract import Importer, ParsedBatch
from patron.ingest.validation import ROW, RowValidator, read_text_table
from patron.progress import NullProgress, Progress

__all__ = ["OnlineRetailImporter"]

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
SOURCE = "online-retail"


class OnlineRetailImporter(Importer):
    """Invoice lines of the UCI Online Retail data set."""

    format: ClassVar[str] = "online-retail"
    summary: ClassVar[str] = "UCI Online Retail invoice lines (CSV, optionally gzipped)"

    def parse(self, progress: Progress = NullProgress()) -> ParsedBatch:  # noqa: B008
        progress.stage("read", None)
        text = read_text_table(self.path, columns=COLUMNS)
        text = text.with_columns(
            pl.int_range(1, pl.len() + 1).over("InvoiceNo").cast(pl.Int32).alias("line_no"),
            pl.col("InvoiceNo").str.starts_with("C").fill_null(False).alias("cancelled"),
        )
        progress.stage("validate", None)
        rows, quarantine = self._validate(text)
        lines = rows.with_columns(
            (pl.lit(SOURCE + ":") + pl.col("InvoiceNo")).alias("order_key"),
            (pl.lit(SOURCE + ":") + pl.col("StockCode")).alias("product_key"),
            pl.col("CustomerID").str.replace(r"\.0+$", "").alias("member_source_id"),
            (pl.col("Quantity") * pl.col("UnitPrice")).alias("amount"),
        )
        return ParsedBatch(
            source=SOURCE,
            rows_read=text.height,
            primary="order_lines",
            quarantine=quarantine,
            members=self._members(lines),
            products=self._products(lines),
            orders=self._orders(lines),
            order_lines=lines.select(
                "order_key",
                "line_no",
                "product_key",
                pl.col("Quantity").alias("quantity"),
                pl.col("UnitPrice").alias("unit_price"),
                "amount",
                pl.lit(0.0).alias("discount"),
                pl.lit(False).alias("returned"),
                pl.col(ROW).alias("row_number"),
            ),
            notes={
                "guest_lines": int(lines["member_source_id"].null_count()),
                "cancellation_lines": int(lines["cancelled"].sum()),
            },
        )

    @staticmethod
    def _validate(text: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        check = RowValidator(text)
        check.require("InvoiceNo")
        check.require("StockCode")
        quantity = check.integer("Quantity")
        check.timestamp("InvoiceDate", "%Y-%m-%d %H:%M:%S")
        price = check.number("UnitPrice")
        customer = pl.col("CustomerID")
        check.check(
            customer.is_not_null() & ~customer.str.contains(r"^\d+(\.0+)?$"),
            "CustomerID",
            "customer id is not a whole number",
        )
        check.check(price < 0, "UnitPrice", "negative unit price (an adjustment, not a sale)")
        check.check(quantity == 0, "Quantity", "zero quantity")
        cancelled = pl.col("cancelled")
        check.check(
            (quantity < 0) & ~cancelled,
            "Quantity",
            "negative quantity outside a cancellation invoice (stock write-off)",
        )
        check.check((quantity > 0) & cancelled, "Quantity", "positive quantity on a cancellation invoice")
        return check.split()

    @staticmethod
    def _members(lines: pl.DataFrame) -> pl.DataFrame:
        known = lines.filter(pl.col("member_source_id").is_not_null())
        return (
            known.sort("InvoiceDate")
            .group_by("member_source_id", maintain_order=True)
            .agg(
                pl.col("InvoiceDate").first().alias("signup_at"),
                pl.col("Country").drop_nulls().last().alias("region"),
            )
            .rename({"member_source_id": "source_id"})
            .with_columns(pl.lit("online").alias("channel"))
        )

    @staticmethod
    def _products(lines: pl.DataFrame) -> pl.DataFrame:
        return lines.group_by("product_key", maintain_order=True).agg(
            pl.col("Description").drop_nulls().mode().sort().first().alias("title"),
            pl.col("UnitPrice").filter(pl.col("UnitPrice") > 0).median().alias("price"),
        )

    @staticmethod
    def _orders(lines: pl.DataFrame) -> pl.DataFrame:
        return lines.group_by("order_key", maintain_order=True).agg(
            pl.col("member_source_id").drop_nulls().first(),
            pl.col("InvoiceDate").min().alias("ordered_at"),
            pl.when(pl.col("cancelled").first())
            .then(pl.lit("cancelled"))
            .otherwise(pl.lit("completed"))
            .alias("status"),
            pl.lit("online").alias("channel"),
            pl.col("amount").sum(),
            pl.lit(0.0).alias("discount"),
        )
