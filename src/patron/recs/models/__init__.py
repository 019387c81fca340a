"""The recommendation models; importing this package registers every one of them.

Each module of the package defines one model family and registers it with
:func:`patron.recs.base.register`.
"""

from __future__ import annotations

import importlib
import pkgutil

from patron.recs.base import MODEL_REGISTRY

__all__ = ["MODEL_REGISTRY", "load_all"]


def load_all() -> dict[str, type]:
    """Import every model module (registering its models) and return the registry."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return dict(MODEL_REGISTRY)


load_all()
