"""How a laboratory value reads and draws on a screen: the number in the reader's format, its
unit as people write it, its reference range, and a trend as a small inline SVG.

The SVG is drawn on the server: no JavaScript, and nothing the Content Security Policy would
refuse (no `style` attribute: the look is the `.trend-*` classes of static/css/dmp.css). It
carries its own text alternative (`role="img"`, `aria-label` and `<title>`), the values with
their dates, since a line says nothing to a screen reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

# UCUM codes as a reader writes them (the code itself where it reads well already).
UNIT_LABELS = {"umol/L": "µmol/L", "mL/min/{1.73_m2}": "mL/min/1,73 m²", "10*9/L": "G/L", "10*12/L": "T/L",
               "[iU]/L": "UI/L", "m[IU]/L": "mUI/L", "u[IU]/mL": "µUI/mL", "ug/L": "µg/L", "{INR}": ""}
PAD = 0.12  # the share of the height kept free above and below the values


def unit_label(unit: str) -> str:
    """The UCUM code `unit` as it is written on a laboratory report."""
    return UNIT_LABELS.get(unit, unit)


def number(value: Decimal | None) -> str:
    """A value in the active language's format (7,1 in French), as precise as the laboratory
    sent it."""
    return "" if value is None else formats.localize(value)


def value_text(observation) -> str:
    """What a value says, with its comparator and unit ("< 0,5 g/L"), or the laboratory's words."""
    if observation.quantity is None:
        return observation.value
    parts = (observation.comparator, number(observation.quantity), unit_label(observation.unit))
    return " ".join(part for part in parts if part)


def reference_range(observation) -> str:
    """The laboratory's reference range in symbols ("3,5 – 5,0 mmol/L", "≥ 60"), else its words."""
    low, high, unit = observation.low, observation.high, unit_label(observation.unit)
    if low is not None and high is not None:
        text = f"{number(low)} – {number(high)}"
    elif low is not None or high is not None:
        text = f"≥ {number(low)}" if low is not None else f"≤ {number(high)}"
    else:
        return observation.reference_text
    return f"{text} {unit}".strip()


@dataclass(frozen=True)
class Size:
    width: int
    height: int
    axes: bool = False  # labels: the highest and lowest value, the first and last date


SPARK = Size(96, 20)
CHART = Size(640, 180, axes=True)
AXIS_LEFT, AXIS_BOTTOM = 48, 18


def day(when: datetime) -> str:
    """A value's day, in the server's time zone and the reader's format."""
    return formats.date_format(timezone.localtime(when), "SHORT_DATE_FORMAT")


def alternative(name: str, values: Sequence) -> str:
    """The trend in words: every value with its date, oldest first."""
    listed = ", ".join(f"{value_text(v)} ({day(v.effective_at)})"
                       for v in values)
    return _("Trend of %(name)s: %(values)s") % {"name": name, "values": listed}


def trend_svg(name: str, values: Sequence, size: Size = SPARK) -> SafeString:
    """An SVG line of `values` (observations of one unit, oldest first; at least two with a
    quantity, else nothing) over time, the reference range of the latest as a band, the
    flagged values as marks. `name` is the analyte's, for the text alternative."""
    points = [(v.effective_at, v.quantity, v.is_abnormal) for v in values if v.quantity is not None]
    if len(points) < 2:
        return SafeString("")
    latest = values[-1]
    left, bottom = (AXIS_LEFT, AXIS_BOTTOM) if size.axes else (2, 0)
    plot = _Plot([p[0] for p in points], [p[1] for p in points] + [b for b in (latest.low, latest.high) if b],
                 left, size.width - 4, 3, size.height - bottom - 3)
    label = alternative(name, values)
    body = [_band(plot, latest.low, latest.high),
            format_html('<polyline class="trend-line" points="{}"/>',
                        " ".join(f"{plot.x(t)},{plot.y(q)}" for t, q, _flag in points))]
    body += [format_html('<circle class="{}" cx="{}" cy="{}" r="{}"/>',
                         "trend-flagged" if flagged else "trend-point", plot.x(t), plot.y(q), 3 if size.axes else 2)
             for t, q, flagged in points if flagged or size.axes or (t, q) == points[-1][:2]]
    if size.axes:
        body.append(_axes(plot, points, size))
    return format_html(
        '<svg class="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-label="{label}"><title>{label}</title>{body}</svg>',
        w=size.width, h=size.height, label=label, body=format_html_join("", "{}", ((part,) for part in body)))


class _Plot:
    """Times and values to coordinates, inside the box from (x0, y0) to (x1, y1)."""

    def __init__(self, times: list[datetime], quantities: list[Decimal], x0: int, x1: int, y0: int, y1: int):
        self.first, last = times[0].timestamp(), times[-1].timestamp()
        self.span = (last - self.first) or 1.0
        low, high = float(min(quantities)), float(max(quantities))
        margin = (high - low) * PAD or abs(high) * PAD or 1.0
        self.low, self.high = low - margin, high + margin
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    def x(self, when: datetime) -> float:
        return round(self.x0 + (when.timestamp() - self.first) / self.span * (self.x1 - self.x0), 1)

    def y(self, quantity: Decimal) -> float:
        share = (float(quantity) - self.low) / (self.high - self.low)
        return round(self.y1 - share * (self.y1 - self.y0), 1)


def _band(plot: _Plot, low: Decimal | None, high: Decimal | None) -> SafeString:
    if low is None and high is None:
        return SafeString("")
    top = plot.y(high) if high is not None else plot.y0
    under = plot.y(low) if low is not None else plot.y1
    return format_html('<rect class="trend-range" x="{}" y="{}" width="{}" height="{}"/>',
                       plot.x0, top, plot.x1 - plot.x0, round(under - top, 1))


def _axes(plot: _Plot, points: list, size: Size) -> SafeString:
    """The chart's labels: the highest and lowest value drawn, the first and the last date."""
    quantities = [q for _t, q, _f in points]
    high, low = max(quantities), min(quantities)
    date = size.height - 4
    return format_html(
        '<text class="trend-axis" x="{l}" y="{yh}" text-anchor="end">{high}</text>'
        '<text class="trend-axis" x="{l}" y="{yl}" text-anchor="end">{low}</text>'
        '<text class="trend-axis" x="{x0}" y="{d}">{first}</text>'
        '<text class="trend-axis" x="{x1}" y="{d}" text-anchor="end">{last}</text>',
        l=plot.x0 - 4, yh=plot.y(high) + 4, yl=plot.y(low) + 4, high=number(high), low=number(low),
        x0=plot.x0, x1=plot.x1, d=date,
        first=day(points[0][0]), last=day(points[-1][0]))
