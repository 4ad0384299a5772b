"""Steps the browser tests share: logging in as a person would, and the 360 px check."""

from __future__ import annotations

import re

from tests.personas import PASSWORD, totp_code

SMALL_SCREEN = 360


def log_in_with_app_code(page, base_url: str, username: str) -> None:
    """A professional, a counter agent: password, then the authenticator app's code."""
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", totp_code())
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/" not in url)


def log_in_with_sms_code(page, base_url: str, username: str, sms_outbox, password: str = PASSWORD) -> None:
    """A patient: password, then the code the SMS brought (the last one in the outbox)."""
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", password)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/login/code/confirm/")
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1))
    page.locator("main form button[type=submit]").first.click()


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def no_horizontal_scroll(page) -> bool:
    """The page fits a small screen (the tests set the viewport to 360 px)."""
    return page_width(page) <= SMALL_SCREEN
