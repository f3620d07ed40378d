"""The LangServe chat playground in a real headless Chromium (Debian `chromium`, driven by
Playwright without a browser download): type a request, send it, watch the streamed answer
appear, save a screenshot to tests/artifacts/playground.png."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from support.twin_server import served_twin

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_playground_streams_an_answer_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    question = "Write a LinkedIn post about shipping on Fridays"
    with served_twin(tmp_path / "data") as twin, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{twin.url}/twin/playground/")
            box = page.get_by_placeholder("Send a message...")
            box.wait_for(timeout=30_000)  # the chat UI accepted the input/output schemas
            box.fill(question)
            box.press("Enter")

            # Messages render as editable text areas: [new-message box, human, ai] order
            # varies, so read every value and watch the AI reply grow.
            def values() -> list[str]:
                return page.eval_on_selector_all("textarea", "els => els.map(e => e.value)")

            seen: list[str] = []
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                replies = [v for v in values() if v.strip() and v != question]
                if replies and (not seen or replies[0] != seen[-1]):
                    seen.append(replies[0])
                if seen and page.locator("textarea").first.is_enabled() and _idle(page):
                    break
                page.wait_for_timeout(100)
            page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert seen, "no answer appeared in the playground"
    assert len(seen[-1].strip()) > 0
    # Streamed, not dropped in at the end: the reply was seen growing.
    assert len(seen) >= 2 and len(seen[-1]) > len(seen[0]), seen
    assert (ARTIFACTS / "playground.png").stat().st_size > 10_000


def _idle(page) -> bool:
    """The send button shows a spinner while streaming; idle when it is gone."""
    return page.locator("svg.animate-spin").count() == 0
