"""Every list a page shows is bounded (issue 16): at most `LIST_PAGE_SIZE` rows at a time, the
page number the only thing a list puts in its URL (what is searched is POSTed, never in a URL:
docs/security.md)."""

from __future__ import annotations

from django.core.paginator import Page, Paginator

LIST_PAGE_SIZE = 50


def page_number(value: object) -> int:
    """The page asked for in a query string; 1 for anything else. `Paginator.get_page()` then
    brings a number past the end back to the last page."""
    text = value if isinstance(value, str) else ""
    return int(text) if text.isdigit() and 0 < int(text) < 100_000 else 1


def page_of(rows, number: int, size: int = LIST_PAGE_SIZE) -> Page:
    """Page `number` of `rows` (an ordered queryset: two queries, the count and the page)."""
    return Paginator(rows, size).get_page(number)


def page_urls(url: str, page: Page) -> dict[str, str]:
    """The links to the previous and next pages of `url` (empty where there is none), for
    templates/_pager.html."""
    return {
        "previous": f"{url}?page={page.previous_page_number()}" if page.has_previous() else "",
        "next": f"{url}?page={page.next_page_number()}" if page.has_next() else "",
    }
