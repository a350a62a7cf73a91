"""Server-side SVG charts for the dashboards: horizontal bars, stacked bars over time, a funnel.

No JavaScript and nothing fetched: each renderer returns one `<svg role="img">` string (marked
safe, every label escaped here) with a `<title>` and `<desc>` for screen readers, text labels on
the bars and axis ticks. With no data it returns an empty-state paragraph saying what to do next.
Colours are the Okabe-Ito palette (distinguishable with colour-blindness), text is dark on light.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7A7A7A"]
TEXT, MUTED, GRID, AXIS = "#1f2933", "#52606d", "#e4e7eb", "#9aa5b1"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"'
_ids = itertools.count(1)


def format_number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def format_duration(seconds: float | None) -> str:
    """A short human duration: 45 s, 12 min, 3.5 h, 2.1 d; "—" for none."""
    if seconds is None:
        return "—"
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 5 × 10^k) up to at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if step < 1:
        step = 1  # counts: no fractional ticks
    ticks, value = [0.0], 0.0
    while value < top:
        value += step
        ticks.append(value)
    return ticks


def empty_state(message: str) -> SafeString:
    return mark_safe(f'<p class="empty-state chart-empty">{escape(message)}</p>')


def _svg(*, title: str, desc: str, width: int, height: int, body: list[str]) -> SafeString:
    uid = f"chart{next(_ids)}"
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" aria-labelledby="{uid}-t {uid}-d" {FONT} '
        f'font-size="13" fill="{TEXT}">'
        f'<title id="{uid}-t">{escape(title)}</title><desc id="{uid}-d">{escape(desc)}</desc>'
        + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = TEXT, size: int | None = None,
          weight: str | None = None) -> str:
    extra = (f' font-size="{size}"' if size else "") + (f' font-weight="{weight}"' if weight else "")
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>'
            f"{escape(text)}</text>")


def _clip(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(*, title: str, desc: str, labels: Sequence[str], values: Sequence[float],
              value_format: Callable[[float], str] = format_number, empty_message: str,
              color: str = PALETTE[0], width: int = 440) -> SafeString:
    """Horizontal bars, one per label, each with its value written at its end."""
    if not labels or not any(values):
        return empty_state(empty_message)
    row, label_w, value_w, top = 28, 150, 62, 8
    height = top + row * len(labels) + 8
    plot_w = width - label_w - value_w
    biggest = max(values) or 1
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        bar_w = plot_w * value / biggest
        body.append(_text(label_w - 8, y + 17, _clip(str(label), 22), anchor="end"))
        body.append(f'<rect x="{label_w}" y="{y + 4}" width="{bar_w:.1f}" height="{row - 10}" rx="3" '
                    f'fill="{color}"><title>{escape(label)}: {escape(value_format(value))}</title></rect>')
        body.append(_text(label_w + bar_w + 6, y + 17, value_format(value), weight="600"))
    return _svg(title=title, desc=desc, width=width, height=height, body=body)


def stacked_bars(*, title: str, desc: str, categories: Sequence[str], series: dict[str, Sequence[float]],
                 empty_message: str, width: int = 720, height: int = 260) -> SafeString:
    """Vertical bars (one per category, e.g. a day or a rep), stacked by series, with a y axis,
    thinned and clipped x tick labels and a legend that wraps onto more lines (the chart grows)."""
    if not categories or not any(any(v) for v in series.values()):
        return empty_state(empty_message)
    left, right, top, line_h, bottom = 44, 12, 12, 26, 40
    legend, x, line = [], left, 0
    for name in series:
        label = _clip(name, 22)
        entry_w = 16 + 8 * len(label) + 20
        if x + entry_w > width - right and x > left:
            line, x = line + 1, left
        legend.append((name, label, x, line))
        x += entry_w
    legend_h = line_h * (line + 1)
    height += line_h * line
    plot_w, plot_h = width - left - right, height - top - bottom - legend_h
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    ticks = nice_ticks(max(totals))
    scale = plot_h / ticks[-1]
    base_y = top + plot_h
    slot = plot_w / len(categories)
    bar_w = max(min(slot * 0.7, 40), 1.5)
    body = []
    for tick in ticks:
        y = base_y - tick * scale
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, format_number(tick), anchor="end", fill=MUTED, size=13))
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{base_y}" y2="{base_y}" stroke="{AXIS}"/>')
    colors = dict(zip(series, itertools.cycle(PALETTE), strict=False))
    if "Other" in colors:
        colors["Other"] = PALETTE[-1]
    every = max(1, math.ceil(len(categories) / 10))
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        y = base_y
        for name, values in series.items():
            value = values[i]
            if not value:
                continue
            h = value * scale
            y -= h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colors[name]}">'
                        f"<title>{escape(category)} · {escape(name)}: {format_number(value)}</title></rect>")
        if i % every == 0:
            body.append(_text(x + bar_w / 2, base_y + 18, _clip(category, 16), anchor="middle", fill=MUTED, size=13))
    for name, label, x, line in legend:
        legend_y = height - legend_h + 16 + line * line_h
        body.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" rx="2" fill="{colors[name]}"/>')
        body.append(_text(x + 16, legend_y, label, size=14))
    return _svg(title=title, desc=desc, width=width, height=height, body=body)


def funnel_chart(*, title: str, desc: str, steps: Sequence[tuple[str, int, str]], empty_message: str,
                 width: int = 440) -> SafeString:
    """Centred bars narrowing stage by stage; each `(label, count, note)` step shows its count and a
    note such as the conversion rate from the step before."""
    if not steps or not steps[0][1]:
        return empty_state(empty_message)
    row, label_w, note_w, top = 34, 110, 116, 6
    plot_w = width - label_w - note_w
    height = top + row * len(steps) + 6
    biggest = max(count for _label, count, _note in steps) or 1
    body = []
    for i, (label, count, note) in enumerate(steps):
        y = top + i * row
        bar_w = max(plot_w * count / biggest, 2)
        x = label_w + (plot_w - bar_w) / 2
        body.append(_text(label_w - 8, y + 20, _clip(label, 16), anchor="end", weight="600"))
        body.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{bar_w:.1f}" height="{row - 8}" rx="3" '
                    f'fill="{PALETTE[i % (len(PALETTE) - 1)]}"><title>{escape(label)}: {count}</title></rect>')
        body.append(f'<text x="{label_w + plot_w / 2:.1f}" y="{y + 21}" text-anchor="middle" fill="{TEXT}" '
                    f'font-weight="700" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
                    f"{escape(format_number(count))}</text>")
        body.append(_text(label_w + plot_w + 8, y + 20, note, fill=MUTED))
    return _svg(title=title, desc=desc, width=width, height=height, body=body)
