"""The LOINC-coded values of a laboratory report (CI-SIS CR-BIO, level 3) as plain typed values,
for the structured results ("results as values"): one `LabValue` per observation with a
physical quantity, both units when the sender gives the value in two (a PQ's `translation`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from lxml import etree

from .hardened import NS
from .header import LOINC_ROOT

_XSI_TYPE = f"{{{NS['xsi']}}}type"


@dataclass(frozen=True)
class Quantity:
    value: Decimal
    unit: str  # UCUM, "" when the sender gave none


@dataclass(frozen=True)
class LabValue:
    """One observation: its LOINC code and display name, its value in one or more units (the
    first as the sender gave it), the reference range, the interpretation (HL7
    ObservationInterpretation: N, H, L, A…) and when the sample was taken."""

    loinc: str
    display: str
    quantities: tuple[Quantity, ...]
    low: Quantity | None
    high: Quantity | None
    interpretation: str
    effective: datetime | None

    @property
    def value(self) -> Decimal:
        return self.quantities[0].value

    @property
    def unit(self) -> str:
        return self.quantities[0].unit


def _quantity(element: etree._Element | None, unit_attribute: str = "unit") -> Quantity | None:
    if element is None:
        return None
    try:
        value = Decimal((element.get("value") or "").strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    # No unit stays no unit (HL7 would read "1"): the results check decides if one was needed.
    return Quantity(value, (element.get(unit_attribute) or "").strip())


def hl7_datetime(value: str | None) -> datetime | None:
    """An HL7 TS with its offset ("20260211073500+0100") as an aware datetime; None if not one."""
    raw = (value or "").strip()
    stamp, sign, offset = raw.partition("+") if "+" in raw else raw.partition("-")
    digits = (stamp.split(".")[0] + "000000")[:14]
    try:
        moment = datetime.strptime(digits, "%Y%m%d%H%M%S")  # noqa: DTZ007 - the offset is applied below
    except ValueError:
        return None
    minutes = int(offset[:2]) * 60 + int(offset[2:4]) if len(offset) == 4 and offset.isdigit() else 0
    zone = timezone(timedelta(minutes=minutes if sign != "-" else -minutes))
    return moment.replace(tzinfo=zone)


def _lab_value(observation: etree._Element) -> LabValue | None:
    code = observation.find("h:code", NS)
    value = observation.find("h:value", NS)
    if code is None or code.get("codeSystem") != LOINC_ROOT or value is None:
        return None
    if not (value.get(_XSI_TYPE) or "").endswith("PQ"):
        return None
    first = _quantity(value)
    if first is None:
        return None
    others = [_quantity(t, "code") for t in value.findall("h:translation", NS)]
    interval = observation.find("h:referenceRange/h:observationRange/h:value", NS)
    interpretation = observation.find("h:interpretationCode", NS)
    effective = observation.find("h:effectiveTime", NS)
    return LabValue(
        loinc=code.get("code", ""), display=code.get("displayName", ""),
        quantities=(first, *(q for q in others if q is not None)),
        low=_quantity(interval.find("h:low", NS)) if interval is not None else None,
        high=_quantity(interval.find("h:high", NS)) if interval is not None else None,
        interpretation=interpretation.get("code", "") if interpretation is not None else "",
        effective=hl7_datetime(effective.get("value") if effective is not None else None),
    )


def lab_values(root: etree._Element) -> list[LabValue]:
    """Every LOINC-coded observation with a physical quantity in the structured body, in order."""
    found = (_lab_value(o) for o in root.iterfind(".//h:structuredBody//h:observation", NS))
    return [value for value in found if value is not None]


@dataclass(frozen=True)
class LabReportFacts:
    """What a laboratory report's header says of the report as a whole: its own id (root and
    extension), when the samples were taken (the service event's start), when it was issued
    (the document's time) and the laboratory (the author's organisation)."""

    id_root: str
    id_extension: str
    sampled: datetime | None
    issued: datetime | None
    laboratory: str


def _value_of(element: etree._Element | None) -> str | None:
    return element.get("value") if element is not None else None


def report_facts(root: etree._Element) -> LabReportFacts:
    ident = root.find("h:id", NS)
    laboratory = root.find("h:author/h:assignedAuthor/h:representedOrganization/h:name", NS)
    return LabReportFacts(
        id_root=ident.get("root", "") if ident is not None else "",
        id_extension=ident.get("extension", "") if ident is not None else "",
        sampled=hl7_datetime(_value_of(root.find("h:documentationOf/h:serviceEvent/h:effectiveTime/h:low", NS))),
        issued=hl7_datetime(_value_of(root.find("h:effectiveTime", NS))),
        laboratory=" ".join("".join(laboratory.itertext()).split())[:200] if laboratory is not None else "",
    )
