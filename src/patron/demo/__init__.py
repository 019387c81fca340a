"""The deterministic demo shop generator (see :mod:`patron.demo.generator`)."""

from patron.demo.generator import (
    BGNBD_A,
    BGNBD_ALPHA,
    BGNBD_B,
    BGNBD_R,
    EVENT_WINDOW_DAYS,
    MANJIAN_TIERS,
    SOURCE,
    generate_shop,
)

__all__ = [
    "BGNBD_A",
    "BGNBD_ALPHA",
    "BGNBD_B",
    "BGNBD_R",
    "EVENT_WINDOW_DAYS",
    "MANJIAN_TIERS",
    "SOURCE",
    "generate_shop",
]
