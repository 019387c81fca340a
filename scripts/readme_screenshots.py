"""Take the README's console screenshots from a running Patron (e.g. `make demo`).

Usage::

    .venv/bin/python scripts/readme_screenshots.py --url http://127.0.0.1:8000 --user demo --password ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{args.url}/lang/en?next=/login")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.wait_for_selector("canvas")
        page.wait_for_timeout(800)
        page.screenshot(path=str(OUT / "dashboard-en.png"))
        page.goto(f"{args.url}/members?segment=champions")
        page.click("table tbody tr a")
        page.goto(f"{args.url}/lang/zh-CN?next={page.url.removeprefix(args.url)}")
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "member-zh.png"))
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
