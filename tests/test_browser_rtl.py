"""Right to left in Debian's Chromium: on the patient's record page in Arabic and in Persian,
the NIR (digits in groups) and the date of birth sit next to Arabic-script text. The bidi
algorithm would lay the NIR's groups out backwards ("91 084 006 78 05 85 1") in a right-to-left
paragraph; isolated (`|ltr`, dmp/templatetags/bidi.py) they read left to right in their
logical order. Read back from the rendered page: each character's x position."""

from __future__ import annotations

import re

import pytest

from dmp.models.record import nir_key
from tests.browser import log_in_with_sms_code

NIR13 = "1850578006084"
NIR = f"{NIR13}{nir_key(NIR13):02d}"

# The x of each non-space character of the element's text, in logical order.
CHARACTER_XS = """(selector) => {
  const root = document.querySelector(selector);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const xs = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i++) {
      if (/\\s/.test(node.data[i])) continue;
      const range = document.createRange();
      range.setStart(node, i); range.setEnd(node, i + 1);
      xs.push([node.data[i], range.getBoundingClientRect().x]);
    }
  }
  return xs;
}"""

# The same page without the isolation: every <bdi> replaced by its text.
UNWRAP = """() => document.querySelectorAll('p.identity bdi').forEach(b => b.replaceWith(b.textContent))"""


def _left_to_right(xs) -> bool:
    positions = [x for _char, x in xs]
    return all(a < b for a, b in zip(positions, positions[1:], strict=False))


@pytest.mark.parametrize("language", ["ar", "fa"])
@pytest.mark.django_db(transaction=True)
def test_the_nir_and_the_date_read_left_to_right_in_a_right_to_left_page(live_server, page, world, sms_outbox,
                                                                         language):
    world.alice.preferred_language = language
    world.alice.save(update_fields=["preferred_language"])
    world.record.nir = NIR
    world.record.save(update_fields=["nir"])
    log_in_with_sms_code(page, live_server.url, "alice_martin", sms_outbox)
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")

    assert page.locator("html").get_attribute("dir") == "rtl"
    identity = page.locator("p.identity").inner_text()
    assert re.search(r"[\u0600-\u06FF]", identity)  # the label around them is Arabic script

    nir = page.evaluate(CHARACTER_XS, "p.identity .identifier")
    born = page.evaluate(CHARACTER_XS, "p.identity .birth-date")
    assert "".join(c for c, _x in nir) == NIR
    assert _left_to_right(nir), nir
    assert len(born) >= 8 and _left_to_right(born), born

    # What the isolation prevents: without it the NIR's groups are laid out right to left.
    page.evaluate(UNWRAP)
    assert not _left_to_right(page.evaluate(CHARACTER_XS, "p.identity .identifier"))

    # The "back" arrow points the way the reader came from: to the right, right to left.
    page.goto(live_server.url + f"/patient/records/{world.record.pk}/documents/{world.docs['consultation'].pk}/")
    arrow = page.locator("p.back .arrow-back")
    assert arrow.evaluate("e => getComputedStyle(e).transform") == "matrix(-1, 0, 0, 1, 0, 0)"
    link = page.locator("p.back a").bounding_box()
    assert arrow.bounding_box()["x"] > link["x"] + link["width"] / 2, "the arrow starts the line, at the right"
