"""Every PDF we render (legal copies, summaries, printouts, demo documents) goes through WeasyPrint
here. Each template carries its own styles in one `<style>` element; parsing that stylesheet was
about a third of a small document's rendering, and loading the fonts' configuration another
part, so both are kept per thread and reused: the next document with the same styles is only
laid out. WeasyPrint is imported on the first PDF only: importing the modules that render does
not need pango."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable

# One `<style>` element without attributes (our templates' form). A document holding any other
# `<style` or a `<link` (a stylesheet we did not write, a second sheet) is rendered as it is.
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_OTHER_SHEETS = re.compile(r"<style|<link", re.IGNORECASE)
# What would not cascade or parse the same outside the document (see render()): such a sheet
# stays in its document.
_DOCUMENT_ONLY = re.compile(r"!\s*important|@counter-style|@layer|@import", re.IGNORECASE)
# Distinct stylesheets kept per thread: a handful of templates, some styled per language.
_MAX_SHEETS = 64

_local = threading.local()


def _per_thread():
    # FontConfiguration is not shared between threads (it holds pango and fontconfig state), and
    # a stylesheet is parsed with the font configuration it is used with (its @font-face rules
    # register there), so both live in the thread that renders.
    if not hasattr(_local, "fonts"):
        from weasyprint.text.fonts import FontConfiguration

        _local.fonts = FontConfiguration()
        _local.sheets = {}
    return _local.fonts, _local.sheets


def _stylesheet(css: str, url_fetcher: Callable | None):
    import weasyprint

    fonts, sheets = _per_thread()
    key = (css, url_fetcher)
    sheet = sheets.get(key)
    if sheet is None:
        if len(sheets) >= _MAX_SHEETS:
            sheets.clear()
        options = {"url_fetcher": url_fetcher} if url_fetcher else {}
        sheet = sheets[key] = weasyprint.CSS(string=css, font_config=fonts, **options)
    return sheet


def render(html: str, *, url_fetcher: Callable | None = None):
    """`html` laid out in pages (a weasyprint Document: count its pages, write it, copy some)."""
    import weasyprint

    fonts, _sheets = _per_thread()
    options = {"url_fetcher": url_fetcher} if url_fetcher else {}
    stylesheets = []
    match = _STYLE.search(html)
    if match and len(_OTHER_SHEETS.findall(html)) == 1 and not _DOCUMENT_ONLY.search(match.group(1)):
        # The template's styles come from the parsed copy instead of its now empty `<style>`,
        # and the document's tree is unchanged. WeasyPrint gives a stylesheet passed this way the
        # user origin, between its own defaults and the document's styles: with the document's
        # only sheet moved there, it still overrides the defaults and yields to `style`
        # attributes, and its rules keep their order and specificity among themselves. Only
        # !important declarations (user ones beat the document's) would rank otherwise, and
        # @counter-style and @layer register in the document being parsed: those stay in place.
        stylesheets.append(_stylesheet(match.group(1), url_fetcher))
        html = html[:match.start(1)] + html[match.end(1):]
    return weasyprint.HTML(string=html, **options).render(stylesheets=stylesheets, font_config=fonts)


def write_pdf(html: str, *, url_fetcher: Callable | None = None) -> bytes:
    """`html` as a PDF."""
    return render(html, url_fetcher=url_fetcher).write_pdf()


def one_page_pdf(template: str, context: dict, levels: Iterable[dict]) -> bytes:
    """`template` as a one-page PDF: rendered with `context` and each of `levels` in turn (from
    the most detailed), the first that fits on one page; still too long at the least detail (an
    enormous synthesis), the first page only."""
    from django.template.loader import render_to_string

    for level in levels:
        document = render(render_to_string(template, {**context, **level}))
        if len(document.pages) == 1:
            return document.write_pdf()
    return document.copy(document.pages[:1]).write_pdf()
