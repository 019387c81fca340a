"""Vendored browser assets: Apache ECharts, installed from npm, copied at build time.

``npm ci`` at the repository root installs the version pinned in
``package-lock.json``; :func:`ensure_vendor_assets` (or
``python -m patron.console.assets``) copies the minified bundle into
``static/vendor/``, which is not committed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["VENDOR_DIR", "VENDOR_FILES", "ensure_vendor_assets", "vendor_available"]

VENDOR_DIR = Path(__file__).with_name("static") / "vendor"
# destination name -> path below the project root
VENDOR_FILES: dict[str, str] = {"echarts.min.js": "node_modules/echarts/dist/echarts.min.js"}


def vendor_available(name: str = "echarts.min.js") -> bool:
    return (VENDOR_DIR / name).is_file()


def ensure_vendor_assets(project_root: Path) -> list[Path]:
    """Copy the npm-installed files into ``static/vendor/``; return their paths.

    Raises FileNotFoundError when ``npm ci`` has not been run in ``project_root``.
    """
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    for name, relative in VENDOR_FILES.items():
        source = project_root / relative
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: run `npm ci` in {project_root} first")
        target = VENDOR_DIR / name
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
        copied.append(target)
    return copied


if __name__ == "__main__":  # python -m patron.console.assets [project_root]
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    for path in ensure_vendor_assets(root):
        print(path)
