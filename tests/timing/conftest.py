"""The timing tier drives the same server and browser as the browser tests."""

from tests.browser.conftest import browser, page, screenshots, server_url

__all__ = ["browser", "page", "screenshots", "server_url"]
