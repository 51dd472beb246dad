"""The ops console in real headless Chromium (Debian's package, driven by Playwright): no data without the
key, keyboard-only navigation to a failed record, timeline and snapshots, retry after a fix."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devstack.stack import Stack
from tests.stackkit import StackKit, wait_until

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (.ci/run installs it: apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    opened = context.new_page()
    yield opened
    context.close()


def test_console_end_to_end(kit: StackKit, stack: Stack, page: Page) -> None:
    customer = kit.create(given_name="Console", family_name="Case", email_address="console@@broken")
    kit.flush()
    console = f"{stack.urls['host']}/api/console/"

    # without the key: a sign-in form and no data at all
    page.goto(console)
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#workspace")).to_be_hidden()
    assert customer["id"] not in page.content()
    page.fill("#key", "not-the-key")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-message")).to_contain_text("rejected")
    assert customer["id"] not in page.content()

    # with the key, using the keyboard only
    page.fill("#key", stack.env["LOCAL_FUNCTION_KEY"])
    page.keyboard.press("Enter")
    expect(page.locator("#workspace")).to_be_visible()
    row_button = page.get_by_role("button", name=f"Open customers record {customer['id']}")
    wait_until(lambda: _visible_after_refresh(page, row_button), timeout=60)
    row_button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#record-title")).to_contain_text(customer["id"])
    expect(page.locator("#record-facts")).to_contain_text("invalid_data")
    expect(page.locator("#timeline")).to_contain_text("Square object")
    expect(page.locator("#timeline")).to_contain_text("Mapped Dataverse payload")
    expect(page.locator("#timeline")).to_contain_text("failed")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

    # fix the customer in Square (no webhook reaches us), then retry from the console
    kit.delivery(paused=True)
    kit.update(customer["id"], email_address="console@example.com")
    page.get_by_role("button", name="Retry", exact=True).click()
    expect(page.locator("#message")).to_contain_text("Retry queued")
    wait_until(lambda: kit.assert_crm_matches_square({customer["id"]}), timeout=60)


def _visible_after_refresh(page: Page, locator: object) -> None:
    page.locator("#filters button[type=submit]").click()
    expect(locator).to_be_visible(timeout=2000)  # type: ignore[arg-type]
