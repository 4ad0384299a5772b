"""The one PDF renderer (dmp/pdf.py): a template's stylesheet parsed once per thread gives the
same PDF, byte for byte, as WeasyPrint reading the document's own `<style>`."""

from __future__ import annotations

from datetime import date

from django.template.loader import render_to_string


def _plain(html: str) -> bytes:
    import weasyprint

    return weasyprint.HTML(string=html).write_pdf()


def test_a_templates_cached_stylesheet_gives_the_same_pdf():
    from dmp import pdf

    html = render_to_string("demo/document.html", {
        "title": "Compte rendu", "issuer": "Centre hospitalier", "author": "Dr Martin", "scanned": "Mme Durand",
        "act_date": date(2024, 3, 2), "reference": "CR-1", "patient_name": "Jeanne Petit",
        "birth_date": date(1970, 1, 1), "identifier": "1 70 01 75 123 456", "paragraphs": ["Examen normal."] * 3,
        "table_header": ["Analyse", "Résultat"], "table_rows": [["Glycémie", "5,2 mmol/L"]] * 4})

    assert pdf.write_pdf(html) == _plain(html)
    sheets = pdf._per_thread()[1]
    parsed = sheets[pdf._STYLE.search(html).group(1), None]
    pdf.write_pdf(html)
    assert sheets[pdf._STYLE.search(html).group(1), None] is parsed  # the second document reused it


def test_a_sheet_that_would_cascade_otherwise_stays_in_its_document():
    """Declarations marked !important rank differently outside the document (WeasyPrint gives
    the stylesheets it is handed the user origin): such a sheet is read in place."""
    from dmp import pdf

    html = ('<!doctype html><html><head><style>p { color: red !important; font-size: 30pt }</style></head>'
            '<body><p style="color: blue !important">bleu</p></body></html>')

    assert pdf.write_pdf(html) == _plain(html)
    assert not any("!important" in css for css, _fetcher in pdf._per_thread()[1])
