"""Reading CDA R2 XML without trusting it: no Django here, so that the file check's child process
(`dmp/file_inspect.py`) loads this module by its path and parses in a process that holds nothing.

The parser resolves no entity, loads no DTD, reaches no network and keeps libxml2's default
limits (no `huge_tree`: depth and text node sizes bounded). A CDA has no DOCTYPE, so any DOCTYPE
is refused before anything is read from the tree: an external entity (XXE) or an entity
expansion bomb ("billion laughs") never reaches the code that reads the document."""

from __future__ import annotations

import re

from lxml import etree

HL7 = "urn:hl7-org:v3"
NS = {"h": HL7, "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
MAX_DEPTH = 64
TEXT_MAX_CHARS = 100_000
# What a ClinicalDocument must carry to be read at all (CDA R2 header), by the name given back.
REQUIRED = (("code", "h:code"), ("effectiveTime", "h:effectiveTime"), ("recordTarget", "h:recordTarget"),
            ("author", "h:author"))


class CdaRefused(Exception):  # noqa: N818 - a verdict on a file, not an error of the program
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse(content: bytes) -> etree._Element:
    """The root of a well-formed XML document with no DOCTYPE and at most MAX_DEPTH levels.
    Raises CdaRefused("dtd" | "xml_invalid" | "too_deep")."""
    if re.search(rb"<!DOCTYPE|<!ENTITY", content[:65536], re.IGNORECASE):
        raise CdaRefused("dtd")
    try:
        tree = etree.fromstring(content, parser=_parser())  # noqa: S320 - the hardened parser above
    except etree.XMLSyntaxError:
        raise CdaRefused("xml_invalid") from None
    docinfo = tree.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise CdaRefused("dtd")
    if _depth(tree) > MAX_DEPTH:
        raise CdaRefused("too_deep")
    return tree


def _depth(root: etree._Element) -> int:
    deepest = 0
    for element in root.iter():
        depth = 0
        parent = element
        while parent is not None and depth <= MAX_DEPTH:
            parent = parent.getparent()
            depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


def check_structure(root: etree._Element) -> None:
    """A CDA R2 header: root `ClinicalDocument` in the HL7 v3 namespace with a code, an
    effective time, a record target and an author. Raises CdaRefused("not_cda" | "missing",
    detail: the names of what is missing, comma-separated)."""
    if root.tag != f"{{{HL7}}}ClinicalDocument":
        raise CdaRefused("not_cda")
    missing = [name for name, path in REQUIRED if root.find(path, NS) is None]
    if missing:
        raise CdaRefused("missing", ", ".join(missing))


def embedded(root: etree._Element) -> tuple[str, str] | None:
    """A level-1 document's `nonXMLBody/text`: (its mediaType, its base64 text), else None."""
    text = root.find("h:component/h:nonXMLBody/h:text", NS)
    if text is None:
        return None
    return (text.get("mediaType") or "").strip().lower(), "".join(text.itertext())


def narrative_text(root: etree._Element) -> str:
    """The words of the structured body (section titles and narrative blocks; entries carry
    their values in attributes), for the search: at most TEXT_MAX_CHARS characters."""
    body = root.find("h:component/h:structuredBody", NS)
    if body is None:
        return ""
    return re.sub(r"\s+", " ", " ".join(body.itertext())).strip()[:TEXT_MAX_CHARS]
