"""Demo members: demographics, hidden tastes and personal fields.

Personal fields are plausible but fake: Chinese names (with a share of
pinyin and English names), e-mail addresses derived from the member id on
reserved ``example.*`` domains (unique by construction), mainland mobile
numbers ``1[3-9]x xxxx xxxx`` whose last eight digits are an affine bijection
of the id (unique too), postal addresses and ISO birthdays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from numpy.typing import NDArray

from patron.demo import vocab

__all__ = ["NON_BUYER_SHARE", "TASTE_CONCENTRATION", "Members", "draw_members", "members_frame"]

NON_BUYER_SHARE = 0.1  # members who register but never complete an order
TASTE_CONCENTRATION = 1.6  # Dirichlet concentration of category tastes (lower = pickier)
GENDER_P = (0.58, 0.40, 0.02)  # female, male, undisclosed
PINYIN_NAME_PER_MILLE = 50  # names written in pinyin ("Wang Fang")
ENGLISH_NAME_PER_MILLE = 50  # English given name and pinyin surname ("Emily Wang")
TWO_CHAR_GIVEN_SHARE = 0.65
_PHONE_MULTIPLIER = 48_271  # odd and not a multiple of 5: a bijection modulo 10**8
_CHUNK = 1 << 20


@dataclass
class Members:
    """Hidden and visible member attributes, indexed by ``source_id - 1``."""

    count: int
    signup_op: NDArray[np.float64]  # operational days; the first order of buyers
    buyer: NDArray[np.bool_]
    gender: NDArray[np.int64]  # index into ("female", "male"); 2 = undisclosed
    birth_year: NDArray[np.int64]
    channel: NDArray[np.int64]  # index into vocab.CHANNELS
    taste_cum: NDArray[np.float64]  # (count, categories) cumulative category taste
    _personal: dict[str, NDArray[np.int64]]

    def draw_categories(self, rng: np.random.Generator, who: NDArray[np.int64]) -> NDArray[np.int64]:
        """One category per entry of ``who`` (member indexes), from each member's taste."""
        draw = rng.random(who.size) * (1.0 - 1e-9)
        category = np.empty(who.size, dtype=np.int64)
        inner = self.taste_cum[:, :-1]
        for lo in range(0, who.size, _CHUNK):
            hi = lo + _CHUNK
            rows = inner[who[lo:hi]]  # one cache line per member instead of one per category
            category[lo:hi] = (rows <= draw[lo:hi, None]).sum(axis=1)
        return category


def _weighted(rng: np.random.Generator, weights: NDArray[np.float64], size: int) -> NDArray[np.int64]:
    cum = np.cumsum(weights / weights.sum())
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int64)


def _tastes(rng: np.random.Generator, gender: NDArray[np.int64], age: NDArray[np.int64]) -> NDArray[np.float64]:
    female = np.asarray(vocab.CATEGORY_TASTE["female"])
    male = np.asarray(vocab.CATEGORY_TASTE["male"])
    base = np.stack([female, male, (female + male) / 2])[gender]
    baby = vocab.CATEGORIES.index("baby")
    base[:, baby] *= np.select([age < 23, age <= 38, age > 50], [0.3, 2.0, 0.6], 1.0)
    alpha = TASTE_CONCENTRATION * base / base.sum(axis=1, keepdims=True)
    taste = rng.standard_gamma(alpha)
    taste += 1e-12
    cum = np.cumsum(taste / taste.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    return cum


def draw_members(rng: np.random.Generator, count: int, horizon: float, start: date) -> Members:
    """Draw ``count`` members whose sign-ups are uniform in operational time ``[0, horizon)``."""
    signup_op = rng.uniform(0.0, horizon, count)
    buyer = rng.random(count) >= NON_BUYER_SHARE
    gender = _weighted(rng, np.asarray(GENDER_P), count)
    age = np.clip(18 + rng.gamma(2.2, 6.5, count), 16, 75).astype(np.int64)
    channel = _weighted(rng, np.asarray([w for _, w in vocab.CHANNELS]), count)
    taste_cum = _tastes(rng, gender, age)
    province = _weighted(rng, np.asarray([p[2] for p in vocab.PROVINCES]), count)
    city_weights = [np.asarray([w for _, w in prov[3]]) for prov in vocab.PROVINCES]
    city_cum = np.concatenate([i + np.cumsum(w / w.sum()) for i, w in enumerate(city_weights)])
    city = np.searchsorted(city_cum, province + rng.random(count) * (1 - 1e-9), side="right")
    city = np.minimum(city, city_cum.size - 1)
    personal: dict[str, NDArray[np.int64]] = {
        "surname": _weighted(rng, np.asarray([s[2] for s in vocab.SURNAMES]), count),
        "given1": rng.integers(0, 1 << 30, count),
        "given2": rng.integers(0, 1 << 30, count),
        "two_chars": (rng.random(count) < TWO_CHAR_GIVEN_SHARE).astype(np.int64),
        "style": rng.integers(0, 1_000, count),  # per mille: name style
        "english": rng.integers(0, len(vocab.ENGLISH_GIVEN), count),
        "domain": rng.integers(0, len(vocab.EMAIL_DOMAINS), count),
        "mobile": rng.integers(0, len(vocab.MOBILE_PREFIXES), count),
        "street": rng.integers(0, len(vocab.STREETS), count),
        "house": rng.integers(1, 400, count),
        "building": rng.integers(0, 30, count),
        "room": rng.integers(101, 2_400, count),
        "day_of_year": rng.integers(0, 1 << 30, count),
        "province": province,
        "city": city,
    }
    phone_offset = int(rng.integers(0, 10**8))
    personal["phone_tail"] = (np.arange(1, count + 1, dtype=np.int64) * _PHONE_MULTIPLIER + phone_offset) % 10**8
    return Members(
        count=count,
        signup_op=signup_op,
        buyer=buyer,
        gender=gender,
        birth_year=start.year - age,
        channel=channel,
        taste_cum=taste_cum,
        _personal=personal,
    )


def _given(members: Members) -> tuple[pl.Series, pl.Series]:
    """Given-name characters and their pinyin, drawn from the gender's list."""
    pools = [vocab.GIVEN_FEMALE, vocab.GIVEN_MALE, vocab.GIVEN_FEMALE + vocab.GIVEN_MALE]
    chars: list[str] = []
    sounds: list[str] = []
    offsets, sizes = [], []
    for pool in pools:
        offsets.append(len(chars))
        sizes.append(len(pool))
        chars.extend(c for c, _ in pool)
        sounds.extend(s for _, s in pool)
    chars.append("")
    sounds.append("")
    offset = np.asarray(offsets)[members.gender]
    size = np.asarray(sizes)[members.gender]
    p = members._personal
    first = offset + p["given1"].astype(np.int64) % size
    second = np.where(p["two_chars"] == 1, offset + p["given2"].astype(np.int64) % size, len(chars) - 1)
    hanzi = pl.Series(chars)
    pinyin = pl.Series(sounds)
    return hanzi[first] + hanzi[second], pinyin[first] + pinyin[second]


def members_frame(members: Members, source_ids: pl.Series, signup_us: NDArray[np.int64]) -> pl.DataFrame:
    """Build the members frame of the batch.

    ``source_ids`` holds the ids ("1".."N"), ``signup_us`` the sign-up
    instants in microseconds since the epoch.
    """
    p = members._personal
    province, city = p["province"], p["city"]
    given_hanzi, given_pinyin = _given(members)
    style = p["style"]
    columns = {
        "source_id": source_ids,
        "sh": pl.Series([s[0] for s in vocab.SURNAMES])[p["surname"]],
        "sp": pl.Series([s[1] for s in vocab.SURNAMES])[p["surname"]],
        "gh": given_hanzi,
        "gp": given_pinyin,
        "en": pl.Series(vocab.ENGLISH_GIVEN)[p["english"]],
        "is_pinyin": style < PINYIN_NAME_PER_MILLE,
        "is_english": (style >= PINYIN_NAME_PER_MILLE) & (style < PINYIN_NAME_PER_MILLE + ENGLISH_NAME_PER_MILLE),
        "domain": pl.Series(vocab.EMAIL_DOMAINS)[p["domain"]],
        "mobile": pl.Series(vocab.MOBILE_PREFIXES)[p["mobile"]],
        "tail": p["phone_tail"],
        "province": pl.Series([name + suffix for name, suffix, _, _ in vocab.PROVINCES])[province],
        "municipality": np.asarray([suffix == "市" for _, suffix, _, _ in vocab.PROVINCES])[province],
        "region": pl.Series([name for name, _, _, _ in vocab.PROVINCES])[province],
        "city": pl.Series([c for prov in vocab.PROVINCES for c, _ in prov[3]])[city],
        "street": pl.Series(vocab.STREETS)[p["street"]],
        "house": p["house"],
        "building": p["building"],
        "room": p["room"],
        "birthday": _birthdays(members.birth_year, p["day_of_year"]),
        "gender": pl.Series(["female", "male", None], dtype=pl.String)[members.gender],
        "birth_year": members.birth_year.astype(np.int32),
        "channel": pl.Series([c for c, _ in vocab.CHANNELS])[members.channel],
        "signup_at": pl.Series(signup_us).cast(pl.Datetime("us")),
    }
    frame = pl.DataFrame(columns)
    latin = pl.col("gp").str.slice(0, 1).str.to_uppercase() + pl.col("gp").str.slice(1)
    name = (
        pl.when("is_pinyin")
        .then(pl.col("sp") + " " + latin)
        .when("is_english")
        .then(pl.col("en") + " " + pl.col("sp"))
        .otherwise(pl.col("sh") + pl.col("gh"))
    )
    local = pl.when("is_english").then(pl.col("en")).otherwise(pl.col("gp")).str.to_lowercase()
    email = local + "." + pl.col("sp").str.to_lowercase() + pl.col("source_id") + "@" + pl.col("domain")
    town = pl.when("municipality").then(pl.lit("")).otherwise(pl.col("city") + "市")
    unit = pl.when(pl.col("building") > 0).then(pl.col("building").cast(pl.String) + "栋").otherwise(pl.lit(""))
    address = (
        pl.col("province") + town + pl.col("street") + pl.col("house").cast(pl.String) + "号"
        + unit + pl.col("room").cast(pl.String) + "室"
    )  # fmt: skip
    return frame.select(
        "source_id",
        name.alias("name"),
        email.alias("email"),
        (pl.col("mobile") + pl.col("tail").cast(pl.String).str.zfill(8)).alias("phone"),
        address.alias("address"),
        pl.col("birthday").cast(pl.String),
        "gender",
        "birth_year",
        "region",
        "city",
        "channel",
        "signup_at",
    )


def _birthdays(birth_year: NDArray[np.int64], draw: NDArray[np.int64]) -> NDArray[np.datetime64]:
    """Pick a day inside each birth year (``draw`` modulo the year's length)."""
    first = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    after = (birth_year + 1 - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    length = (after - first).astype(np.int64)
    result: NDArray[np.datetime64] = first + draw % length
    return result
