"""The SVG chart renderers: well-formed XML, accessible names, labels, empty states and escaping."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from workspace.charts import bar_chart, format_duration, funnel_chart, nice_ticks, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def texts(root: ET.Element) -> list[str]:
    return [el.text for el in root.iter(f"{SVG}text")]


def test_bar_chart_is_valid_svg_with_title_desc_and_value_labels():
    root = parse(bar_chart(title="Aging", desc="Open leads by days untouched", labels=["0–2 days", "7+ days"],
                           values=[12, 3], empty_message="No open leads"))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert (title.text, desc.text) == ("Aging", "Open leads by days untouched")
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert texts(root) == ["0–2 days", "12", "7+ days", "3"]
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == 4 * widths[1]


def test_bar_chart_formats_values_with_the_given_function():
    root = parse(bar_chart(title="Velocity", desc="d", labels=["MQL → SAL"], values=[7200],
                           value_format=format_duration, empty_message="none"))
    assert "2.0 h" in texts(root)


def test_empty_data_gives_an_empty_state_message_not_a_chart():
    for markup in (
        bar_chart(title="t", desc="d", labels=[], values=[], empty_message="No rejections yet: reps reject from a lead page."),
        bar_chart(title="t", desc="d", labels=["a"], values=[0], empty_message="No rejections yet: reps reject from a lead page."),
        stacked_bars(title="t", desc="d", categories=["1 Mar"], series={"web": [0]},
                     empty_message="No rejections yet: reps reject from a lead page."),
        funnel_chart(title="t", desc="d", steps=[("Captured", 0, "")],
                     empty_message="No rejections yet: reps reject from a lead page."),
    ):
        root = parse(markup)
        assert root.tag == "p" and "empty-state" in root.get("class")
        assert root.text == "No rejections yet: reps reject from a lead page."


def test_labels_with_markup_characters_are_escaped():
    evil = '<script>alert("x")</script> & Co'
    for markup in (
        bar_chart(title=evil, desc=evil, labels=[evil], values=[1], empty_message=evil),
        stacked_bars(title=evil, desc=evil, categories=[evil], series={evil: [2]}, empty_message=evil),
        funnel_chart(title=evil, desc=evil, steps=[(evil, 5, evil)], empty_message=evil),
        bar_chart(title="t", desc="d", labels=[], values=[], empty_message=evil),
    ):
        assert "<script>" not in str(markup)
        root = parse(markup)  # still well-formed
        assert root.find(f".//{SVG}script") is None
        assert any(evil in (el.text or "") for el in root.iter()) or root.text == evil


def test_stacked_bars_have_axis_ticks_legend_and_one_rect_per_nonzero_value():
    root = parse(stacked_bars(title="Volume", desc="Leads per day by source", categories=["1 Mar", "2 Mar", "3 Mar"],
                              series={"web_form": [3, 0, 5], "event": [1, 2, 0], "Other": [0, 0, 1]},
                              empty_message="none"))
    labels = texts(root)
    assert ["0", "2", "4", "6"] == [t for t in labels if t.isdigit()]
    assert {"1 Mar", "2 Mar", "3 Mar", "web_form", "event", "Other"} <= set(labels)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert sorted(r.find(f"{SVG}title").text for r in bars) == sorted([
        "1 Mar · web_form: 3", "3 Mar · web_form: 5", "1 Mar · event: 1", "2 Mar · event: 2", "3 Mar · Other: 1"])


def test_stacked_bars_thin_out_tick_labels_on_long_ranges():
    days = [f"{d} Mar" for d in range(1, 31)]
    root = parse(stacked_bars(title="t", desc="d", categories=days, series={"web": [1] * 30}, empty_message="none"))
    shown = [t for t in texts(root) if t.endswith("Mar")]
    assert shown == days[::3]


def test_funnel_shows_each_step_count_and_note():
    root = parse(funnel_chart(title="Funnel", desc="d", steps=[("Captured", 100, ""), ("MQL", 40, "40% of captured"),
                                                              ("SQL", 10, "25% of MQL")], empty_message="none"))
    labels = texts(root)
    for expected in ("Captured", "100", "MQL", "40", "40% of captured", "SQL", "10", "25% of MQL"):
        assert expected in labels
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] > widths[1] > widths[2]


def test_nice_ticks_and_durations():
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(1) == [0, 1]
    assert nice_ticks(95) == [0, 20, 40, 60, 80, 100]
    assert [format_duration(s) for s in (None, 30, 600, 5400, 172800)] == ["—", "30 s", "10 min", "1.5 h", "2.0 d"]


def test_stacked_bars_legend_wraps_onto_more_lines_and_the_chart_grows():
    series = {f"Reason number {i} long": [i + 1] for i in range(6)}  # 196 px per entry: three per line
    root = parse(stacked_bars(title="t", desc="d", categories=["Ann"], series=series, empty_message="none",
                              width=720, height=300))
    assert root.get("viewBox") == "0 0 720 326"  # one more 26 px legend line
    legend = [el for el in root.iter(f"{SVG}text") if (el.text or "").startswith("Reason number")]
    assert [el.text for el in legend] == list(series)
    lines = sorted({float(el.get("y")) for el in legend})
    assert len(lines) == 2 and lines[1] - lines[0] == 26 and lines[1] < 326
    assert all(float(el.get("x")) + 8 * len(el.text) <= 720 for el in legend)  # nothing past the right edge


def test_stacked_bars_clip_long_category_labels_but_keep_them_in_the_bar_titles():
    name = "Bartholomew Featherstonehaugh"
    root = parse(stacked_bars(title="t", desc="d", categories=[name], series={"Bad fit": [2]}, empty_message="none"))
    assert "Bartholomew Fea…" in texts(root) and name not in texts(root)
    bar = next(r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None)
    assert bar.find(f"{SVG}title").text == f"{name} · Bad fit: 2"
