"""Fixtures of the benchmark tests: headless Chromium for the browser tests."""

import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest


def _find(name: str, fallback: str) -> str | None:
    """An executable on PATH, else at its Debian location, else ``None``."""
    found = shutil.which(name)
    if found:
        return found
    return fallback if os.access(fallback, os.X_OK) else None


CHROMIUM = _find("chromium", "/usr/bin/chromium")
CHROMEDRIVER = _find("chromedriver", "/usr/bin/chromedriver")

_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="session")
def start_chromium(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """``start_chromium("1280,1600")`` -> a headless Chromium selenium driver (quit it).

    Offline flags, a fresh profile each; ``browser_log=True`` keeps the console log. Skips
    the test when selenium, chromium or chromedriver is missing.
    """
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        )

    def start(window_size: str, *, browser_log: bool = False) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in _FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--window-size={window_size}")
        options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
        if browser_log:
            options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)

    return start
