"""The full build on a large demo shop: profiles, behaviour tags, CLV, churn, clusters, artefacts, per step.

Uses the demo shop that ``bench/rfm_kpis.py`` prepares in ``--home`` (generated and imported once).
Prints the wall time of every build step (from the build's manifest), the total and peak memory. Run::

    .venv/bin/python bench/full_build.py --home /tmp/patron-bench-1m
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from _common import machine, peak_rss_mib, section, timed
from rfm_kpis import runtime_for


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("/tmp/patron-bench-shop"))
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    if not (args.home / "prepared").exists():
        parser.error(f"no prepared demo shop in {args.home}: run bench/rfm_kpis.py --home {args.home} first")
    from patron.analytics.artefacts import current_manifest
    from patron.analytics.build import build_profiles

    print(f"machine: {machine()}; started {datetime.now():%Y-%m-%d %H:%M}")
    runtime = runtime_for(args.home)
    with section("Patron full build"):
        result, seconds = timed(lambda: build_profiles(runtime, with_models=True))
    manifest = current_manifest(runtime.settings.artefact_dir)
    assert manifest is not None
    steps: dict[str, float] = manifest["seconds"]
    build_dir = Path(manifest["path"])
    churn = json.loads((build_dir / "churn.json").read_text()) if (build_dir / "churn.json").exists() else {}
    clusters = json.loads((build_dir / "clusters.json").read_text())
    for name, value in steps.items():
        print(f"  {name:<16} {value:8.2f} s")
    print(f"members {result.members_profiled:,}; clusters k={clusters['k']}; churn AUC {_auc(churn)}")
    summary = {
        "members": result.members_profiled,
        "total_seconds": round(seconds, 2),
        "steps": steps,
        "peak_rss_mib": round(peak_rss_mib()),
    }
    members, peak = result.members_profiled, peak_rss_mib()
    print(f"RESULT full build: {seconds:.2f} s for {members:,} members; peak RSS {peak:,.0f} MiB")
    if args.json:
        print(json.dumps(summary))
    runtime.close()
    return 0


def _auc(report: dict[str, object]) -> str:
    metrics = report.get("metrics")
    if isinstance(metrics, dict) and isinstance(metrics.get("model"), dict):
        return f"{metrics['model'].get('auc')}"
    return "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
