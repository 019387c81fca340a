"""Data-subject requests: export, correction, restriction and erasure, tracked against their deadline."""

__all__: list[str] = []
