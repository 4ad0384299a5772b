"""The insurer's reimbursement feed: its format (docs/reimbursement_feed.md), the checks of one
line, and a generator of realistic sample files for development, tests and the demo.

One line of a file is one JSON object (JSON lines, UTF-8):

    {"line_id": "CPAM59-2025-000123", "record": "161045935012345", "date": "2025-03-06",
     "kind": "medicine", "code": "3400930000019", "label": "METFORMINE 1000 mg ...",
     "quantity": 1, "amount": "7.62", "provider": "Pharmacie du Vieux-Lille"}

Importing it is dmp/services/reimbursements.py.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from .models import ReimbursementLine
from .models.record import normalise_nir

FIELDS = ("line_id", "record", "date", "kind", "code", "label", "quantity", "amount", "provider")
REQUIRED = ("line_id", "record", "date", "kind", "code", "label", "amount")
MAX_AMOUNT = Decimal("999999.99")
LINE_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CCAM_RE = re.compile(r"^[A-Z]{4}\d{3}$")  # e.g. ZBQK002, a chest X-ray
NGAP_RE = re.compile(r"^[A-Z]{1,4}( \d+(\.\d+)?)?$")  # e.g. G, C, AMI 1
NABM_RE = re.compile(r"^\d{4}$")  # laboratory tests, e.g. 1577 (HbA1c)


class BadLine(ValueError):
    """One line the import skips, with a stable code and a message for the operator. Neither
    holds the line's content (a label or an identifier is personal, sometimes medical)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FeedLine:
    """A line that passed every check of its own (the record is looked up by the import)."""

    line_id: str
    record: str  # NIR or provisional identifier, normalised
    date: date
    kind: str
    code: str
    label: str
    quantity: int
    amount: Decimal
    provider: str

    def values(self) -> dict:
        """The ReimbursementLine fields this line sets."""
        return {"date": self.date, "kind": self.kind, "code": self.code, "label": self.label,
                "quantity": self.quantity, "amount": self.amount, "provider": self.provider}


def ean13_check_digit(first_twelve: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first_twelve))
    return str((10 - total % 10) % 10)


def is_cip13(code: str) -> bool:
    """A CIP13 is an EAN-13 of the French medicine codes: 13 digits starting 34009, with its check digit."""
    return bool(re.fullmatch(r"34009\d{8}", code)) and code[-1] == ean13_check_digit(code[:12])


def parse_line(text: str, *, today: date) -> FeedLine:
    """Check one line of a feed file; `BadLine` says what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadLine("invalid_json", "not a JSON object") from exc
    if not isinstance(data, dict):
        raise BadLine("invalid_json", "not a JSON object")
    for name in REQUIRED:
        if data.get(name) in (None, ""):
            raise BadLine("missing_field", f"missing field {name!r}")
    line_id = _text(data, "line_id", 64)
    if not LINE_ID_RE.match(line_id):
        raise BadLine("bad_line_id", "line_id: 1 to 64 letters, digits or . _ : -")
    record = normalise_nir(_text(data, "record", 20))
    try:
        when = date.fromisoformat(str(data["date"]))
    except ValueError as exc:
        raise BadLine("bad_date", "date: not a date in the form YYYY-MM-DD") from exc
    if when > today:
        raise BadLine("bad_date", "date: in the future")
    kind = str(data["kind"])
    if kind not in ReimbursementLine.Kind.values:
        raise BadLine("bad_kind", f"kind: one of {', '.join(ReimbursementLine.Kind.values)}")
    code = _text(data, "code", 20).upper()
    if kind == ReimbursementLine.Kind.MEDICINE and not is_cip13(code):
        raise BadLine("bad_code", "code: a medicine needs a valid CIP13 (13 digits, 34009…, check digit)")
    if kind == ReimbursementLine.Kind.CARE and not (CCAM_RE.match(code) or NGAP_RE.match(code)
                                                   or NABM_RE.match(code)):
        raise BadLine("bad_code", "code: care needs a CCAM, NGAP or NABM code")
    try:
        amount = Decimal(str(data["amount"]))
    except InvalidOperation as exc:
        raise BadLine("bad_amount", "amount: not a number") from exc
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        raise BadLine("bad_amount", "amount: from 0 to 999999.99 euros, at most 2 decimals")
    quantity = data.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 32767:
        raise BadLine("bad_quantity", "quantity: a whole number from 1 to 32767")
    return FeedLine(
        line_id=line_id, record=record, date=when, kind=kind, code=code, label=_text(data, "label", 200),
        quantity=quantity, amount=amount.quantize(Decimal("0.01")),
        provider=_text(data, "provider", 150) if data.get("provider") else "",
    )


def _text(data: dict, name: str, limit: int) -> str:
    value = data[name]
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise BadLine("bad_field", f"{name}: not a text")
    value = " ".join(str(value).split())
    if len(value) > limit:
        raise BadLine("too_long", f"{name}: longer than {limit} characters")
    return value


# --- A generator of realistic sample files --------------------------------------------------------


def _cip13(seven: str) -> str:
    first_twelve = "34009" + seven
    return first_twelve + ean13_check_digit(first_twelve)


# (code, label, amount reimbursed): made-up products with well-formed CIP13 codes and the
# reimbursed amounts of common generics.
MEDICINES = (
    (_cip13("3005521"), "PARACETAMOL 1000 mg, comprimé, boîte de 8", Decimal("1.32")),
    (_cip13("3014752"), "METFORMINE 1000 mg, comprimé pelliculé, boîte de 90", Decimal("7.62")),
    (_cip13("3027183"), "RAMIPRIL 5 mg, gélule, boîte de 30", Decimal("3.11")),
    (_cip13("3036614"), "ATORVASTATINE 20 mg, comprimé pelliculé, boîte de 30", Decimal("4.37")),
    (_cip13("3045045"), "AMOXICILLINE 1 g, comprimé dispersible, boîte de 6", Decimal("2.98")),
    (_cip13("3052476"), "LEVOTHYROXINE 75 µg, comprimé, boîte de 30", Decimal("1.71")),
    (_cip13("3068907"), "SALBUTAMOL 100 µg/dose, suspension pour inhalation, 200 doses", Decimal("2.87")),
)
# (code, label, amount reimbursed, provider kind)
CARE = (
    ("G", "Consultation de médecine générale", Decimal("19.00"), "gp"),
    ("C", "Consultation de spécialiste", Decimal("19.00"), "specialist"),
    ("AMI 1", "Acte infirmier (injection)", Decimal("2.21"), "nurse"),
    ("DEQP003", "Électrocardiographie sur au moins 12 dérivations", Decimal("9.98"), "specialist"),
    ("ZBQK002", "Radiographie du thorax", Decimal("13.97"), "imaging"),
    ("1577", "Hémoglobine glyquée (HbA1c)", Decimal("5.67"), "lab"),
    ("0552", "Hémogramme (NFS)", Decimal("4.32"), "lab"),
)


def _named(table: tuple, *fragments: str) -> tuple:
    return tuple(row for row in table if any(fragment in row[1] for fragment in fragments))


@dataclass(frozen=True)
class _AgeBand:
    """What people of an age are dispensed: the treatments taken every month (a few drawn
    from `regular`, between `regular_count`), the occasional ones, and the care they receive."""

    regular: tuple
    regular_count: tuple[int, int]
    occasional: tuple
    care: tuple


_EVERY_AGE = _named(MEDICINES, "PARACETAMOL", "AMOXICILLINE", "SALBUTAMOL")
_EVERYDAY_CARE = _named(CARE, "médecine générale", "spécialiste", "injection", "thorax", "NFS")
# A child or a teenager takes no metformin, ramipril, statin or thyroid hormone every month: at
# most an inhaler for asthma; a young adult at most a thyroid treatment or an inhaler. From 40 the
# chronic treatments of the demo's older patients appear.
_AGE_BANDS = (
    (18, _AgeBand(_named(MEDICINES, "SALBUTAMOL"), (0, 1), _EVERY_AGE, _EVERYDAY_CARE)),
    (40, _AgeBand(_named(MEDICINES, "LEVOTHYROXINE", "SALBUTAMOL"), (0, 1), _EVERY_AGE, _EVERYDAY_CARE)),
    (None, _AgeBand(MEDICINES, (1, 3), MEDICINES, CARE)),
)


def _band(birth_date: date | None, today: date) -> _AgeBand:
    if birth_date is None:
        return _AGE_BANDS[-1][1]
    age = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
    return next(band for limit, band in _AGE_BANDS if limit is None or age < limit)


PROVIDERS = {
    "pharmacy": ("Pharmacie du Vieux-Lille", "Pharmacie de la Gare, Roubaix", "Pharmacie des Flandres, Lille"),
    "gp": ("Dr Claire Dumont, médecin généraliste", "Maison de santé Fives, Lille"),
    "specialist": ("Dr Marc Vasseur, cardiologue", "Centre hospitalier de Roubaix, consultations"),
    "nurse": ("Cabinet infirmier Saint-Maurice, Lille",),
    "imaging": ("Centre d'imagerie médicale République, Lille",),
    "lab": ("Laboratoire de biologie médicale du Vieux-Lille", "Laboratoire Biopôle, Roubaix"),
}


def _month_start(today: date, months_back: int) -> date:
    index = today.year * 12 + today.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def generate_lines(identifiers: Iterable[str], *, today: date, months: int = 24,
                   birth_dates: Mapping[str, date] | None = None) -> Iterator[dict]:
    """Lines for each record identifier over the last `months` months (the current one
    included, capped at `today`): the regular medicines of the person's age every month, some
    care now and then (`birth_dates` by identifier; unknown: an adult's). The same identifier,
    birth date, months and day give the same lines and the same `line_id`s, so a file generated
    twice imports as one."""
    for identifier in identifiers:
        band = _band((birth_dates or {}).get(identifier), today)
        seed = hashlib.sha256(identifier.encode()).hexdigest()
        rng = random.Random(seed)  # noqa: S311 - sample data, not security
        regular = rng.sample(band.regular, k=min(len(band.regular), rng.randint(*band.regular_count)))
        pharmacy = rng.choice(PROVIDERS["pharmacy"])
        for back in range(months - 1, -1, -1):
            month = _month_start(today, back)
            month_rng = random.Random(f"{seed}:{month:%Y%m}")  # noqa: S311
            items = [(code, label, amount, "pharmacy", pharmacy, month_rng.randint(3, 10))
                     for code, label, amount in regular]
            if month_rng.random() < 0.25:
                code, label, amount = month_rng.choice(band.occasional)
                items.append((code, label, amount, "pharmacy", pharmacy, month_rng.randint(11, 25)))
            for code, label, amount, kind in month_rng.sample(band.care, k=month_rng.randint(0, 2)):
                items.append((code, label, amount, kind, month_rng.choice(PROVIDERS[kind]), month_rng.randint(1, 28)))
            for number, (code, label, amount, provider_kind, provider, day) in enumerate(items, 1):
                when = min(month + timedelta(days=day - 1), today)
                quantity = 1 if provider_kind != "pharmacy" or month_rng.random() < 0.8 else 2
                yield {
                    "line_id": f"GEN-{seed[:10]}-{month:%Y%m}-{number:02d}",
                    "record": identifier,
                    "date": when.isoformat(),
                    "kind": "medicine" if provider_kind == "pharmacy" else "care",
                    "code": code,
                    "label": label,
                    "quantity": quantity,
                    "amount": str(amount * quantity),
                    "provider": provider,
                }


def write_lines(lines: Iterable[dict], out) -> int:
    """Write lines to a text stream as JSON lines; returns how many."""
    count = 0
    for line in lines:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        count += 1
    return count
