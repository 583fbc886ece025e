"""Debian's headless Chromium driven by Playwright, for tests of the Airflow UI as a person uses it.

Playwright's Python package brings its driver but no browser: it launches the system's chromium
(``./run.sh test`` installs it from apt; ``OFFICEFLOW_CHROMIUM`` points elsewhere). The flags keep
Chromium from calling home (this machine has no internet access; its attempts would only be refused).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def chromium_path() -> str:
    path = os.environ.get("OFFICEFLOW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("no chromium found: `apt-get install chromium` (./run.sh test does) or set "
                           "OFFICEFLOW_CHROMIUM")
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (``playwright.sync_api.Browser``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:  # Playwright gives the browser a new, empty profile
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()



def log_in(page: Any, username: str, password: str, otp: str | None = None) -> None:
    """Fill and send the FAB login form the page shows."""
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    if otp is not None:
        page.fill("input[name=otp]", otp)
    page.click("input[type=submit]")


@contextmanager
def signed_in(browser: Any, platform: Any, username: str, otp: str | None = None, *, timeout_ms: int = 60_000,
              viewport: tuple[int, int] = (1440, 900)) -> Iterator[Any]:
    """A new browser tab signed in as ``username`` through the login form, at Airflow's home page.

    ``platform``: the e2e platform (its ``base_url``; every test user has its ``password``). The default
    timeout is generous: a loaded 2-core machine runs the whole platform.
    """
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    try:
        page.goto(f"{platform.base_url}/auth/login/")
        log_in(page, username, platform.password, otp)
        page.wait_for_url(f"{platform.base_url}/")
        yield page
    finally:
        context.close()

class OffMachineRequests(list[str]):
    """Blocks every request that would leave the machine (the page sees a network error) and lists them."""

    def attach(self, page: Any) -> OffMachineRequests:
        def route(route: Any) -> None:
            url = route.request.url
            if urlparse(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                self.append(url)
                route.abort("internetdisconnected")

        page.route("**/*", route)
        return self


class Screenshots:
    """Numbered screenshots of a walk through the UI: in ``OFFICEFLOW_SCREENSHOTS_DIR`` when set (the
    README's pictures are refreshed with ``OFFICEFLOW_SCREENSHOTS_DIR=docs/screenshots``), else a temp dir."""

    def __init__(self) -> None:
        chosen = os.environ.get("OFFICEFLOW_SCREENSHOTS_DIR")
        self.dir = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="officeflow-screenshots-"))
        self.dir.mkdir(parents=True, exist_ok=True)

    def take(self, page_or_locator: Any, name: str) -> Path:
        path = self.dir / f"{name}.png"
        page_or_locator.screenshot(path=str(path))
        return path
