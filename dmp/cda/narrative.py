"""A CDA's narrative blocks as safe HTML: each CDA narrative element is mapped to one HTML element
of a short whitelist, text is escaped, and no attribute passes but a table cell's spans.

CDA narrative is an XHTML-like language, but a sender's document is not trusted markup: a
`linkHtml` becomes its text (no href, so no `javascript:` nor tracker), `renderMultiMedia` and
`footnoteRef` are left out (no image is fetched), `styleCode` and `style` are dropped, and an
element in another namespace (an `xhtml:script`) is dropped with its content. An element of
the HL7 namespace we do not know keeps its text: a document of an unknown content model is
still readable."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from lxml import etree

from .hardened import HL7, NS

# CDA narrative element → HTML element (None: its children only, in no element of their own).
_TAGS = {
    "paragraph": "p", "br": "br", "sub": "sub", "sup": "sup", "caption": "caption", "footnote": "small",
    "table": "table", "thead": "thead", "tbody": "tbody", "tfoot": "tfoot", "tr": "tr", "th": "th", "td": "td",
    "colgroup": "colgroup", "col": "col", "item": "li", "content": "span", "linkHtml": "span", "text": None,
}
_STYLES = {"Bold": "strong", "Italics": "em"}
_DROPPED = {"renderMultiMedia", "footnoteRef"}
_VOID = {"br", "col"}
_SPAN_MAX = 50
MAX_SECTION_DEPTH = 4


def _attributes(name: str, element: etree._Element) -> str:
    """Only a cell's row and column spans, as small numbers."""
    if name not in ("td", "th"):
        return ""
    kept = []
    for attribute in ("colspan", "rowspan"):
        value = (element.get(attribute) or "").strip()
        if value.isdigit() and 1 < int(value) <= _SPAN_MAX:
            kept.append(f' {attribute}="{int(value)}"')
    return "".join(kept)


def _html_tag(local: str, element: etree._Element) -> str | None:
    if local == "list":
        return "ol" if element.get("listType") == "ordered" else "ul"
    if local == "content":
        styles = (element.get("styleCode") or "").split()
        return next((_STYLES[s] for s in styles if s in _STYLES), "span")
    return _TAGS.get(local)


def _render(element: etree._Element, out: list[str]) -> None:
    if not isinstance(element.tag, str):  # a comment or processing instruction: never shown
        return
    qname = etree.QName(element)
    if qname.namespace != HL7 or qname.localname in _DROPPED:
        return
    tag = _html_tag(qname.localname, element)
    if tag:
        out.append(f"<{tag}{_attributes(tag, element)}>")
    if tag not in _VOID:
        out.append(escape(element.text or ""))
        for child in element:
            _render(child, out)
            out.append(escape(child.tail or ""))
        if tag:
            out.append(f"</{tag}>")


def narrative_html(text: etree._Element) -> str:
    """One narrative block (`section/text`) as HTML: escaped text in whitelisted elements."""
    out: list[str] = []
    _render(text, out)
    return "".join(out)


def _section(section: etree._Element, depth: int, out: list[str]) -> None:
    title = section.find("h:title", NS)
    text = section.find("h:text", NS)
    out.append('<section class="cda-section">')
    if title is not None:
        level = min(2 + depth, 6)
        out.append(f"<h{level}>{escape(' '.join(''.join(title.itertext()).split()))}</h{level}>")
    if text is not None:
        out.append(f'<div class="cda-narrative">{narrative_html(text)}</div>')
    if depth < MAX_SECTION_DEPTH:
        for child in section.iterfind("h:component/h:section", NS):
            _section(child, depth + 1, out)
    out.append("</section>")


def body_html(root: etree._Element) -> SafeString:
    """The structured body's sections, in order, nested sections under their parent."""
    out: list[str] = []
    for section in root.iterfind("h:component/h:structuredBody/h:component/h:section", NS):
        _section(section, 0, out)
    return mark_safe("".join(out))  # noqa: S308 - every text escaped, every tag from the whitelist
