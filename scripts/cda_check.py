"""Run a folder of CDA R2 files through what the record does with a CDA on its way in and when it
is shown, and print one line per file, so that a check against the ANS corpus (or any sender's
files) can be repeated (docs/cda.md "Checked against the ANS corpus"). Usage:

    DMP_ENV=test .venv/bin/python scripts/cda_check.py /path/to/folder [--pdf]

Each line: the file name, then `accepted` or `refused` with the reason the uploader would read;
for an accepted file its level, its type (ours, or `unknown:<code>` for a content model we do not
map: still stored and shown by its narrative), the rendering's size in characters (level 3) or
the embedded file's type (level 1), and how many LOINC values `lab_values` reads. `--pdf` also
makes the printable PDF of each level-3 rendering. A crash is printed as `error` with its
exception: the one outcome that must never appear (it would be a 500)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmp.settings")

import django  # noqa: E402 - configured above

django.setup()

from dmp.cda.crbio import lab_values  # noqa: E402
from dmp.cda.hardened import parse  # noqa: E402
from dmp.cda.reading import read, rendering_pdf  # noqa: E402
from dmp.file_safety import check_file  # noqa: E402
from dmp.services import InvalidInput  # noqa: E402


def outcome(content: bytes, *, pdf: bool = False) -> str:
    """One file's line, after its name."""
    try:
        checked = check_file(content, scan=False)
    except InvalidInput as refused:
        return f"refused: {refused}"
    header = checked.cda
    if header is None:
        return f"accepted as {checked.mime}, not as a CDA"
    reading = read(content)
    shown = f"embeds {reading.embedded_mime}" if header.level == 1 else f"rendering {len(reading.html)} chars"
    if pdf and header.level == 3:
        shown += f", PDF {len(rendering_pdf(reading, title=header.title))} bytes"
    kind = header.doc_type or f"unknown:{header.code}"
    author = header.authors[0] if header.authors else None
    named = f"{author.name or '-'} (RPPS {author.rpps or '-'})" if author else "-"
    return (f"accepted: level {header.level}, type {kind}, act {header.act_date}, author {named}, "
            f"{shown}, {len(lab_values(parse(content)))} LOINC values")


def main(folder: str, *flags: str) -> None:
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        try:
            line = outcome(path.read_bytes(), pdf="--pdf" in flags)
        except Exception as crash:  # noqa: BLE001 - reported, never hidden: the one outcome not allowed
            line = f"error: {type(crash).__name__}: {crash}"
        print(f"{path.name}: {line}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(*sys.argv[1:])
