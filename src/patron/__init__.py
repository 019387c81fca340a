"""Patron: member intelligence and precision marketing for e-commerce.

The domain services are importable without the web layer::

    from patron.settings import Settings
    from patron.ingest.service import run_import
    from patron.analytics.build import build_profiles
"""

from patron.errors import PatronError

__all__ = ["PatronError", "__version__"]
__version__ = "0.1.0"
