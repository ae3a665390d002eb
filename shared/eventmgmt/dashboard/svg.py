"""Small server-side SVG drawings: the causal chain and bar charts. No JavaScript libraries."""

from __future__ import annotations

import math
from html import escape

_SEV_COLOR = {"critical": "#b3261e", "high": "#d9480f", "medium": "#b7791f", "low": "#2b6cb0", "info": "#4a5568"}


def chain_diagram(steps: list[list[str]], counts: dict[str, int], root_kind: str) -> str:
    """Boxes for the chain steps present, cause on the left, symptoms to the right."""
    present = [[k for k in step if counts.get(k)] for step in steps]
    present = [p for p in present if p]
    if not present:
        return ""
    box_w, box_h, gap, row_h = 170, 46, 44, 56
    height = max(len(p) for p in present) * row_h + 10
    width = len(present) * (box_w + gap) - gap + 10
    parts = [
        f'<svg class="chain" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="causal chain">',
        '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="#4a5568"/></marker></defs>',
    ]
    for i, step in enumerate(present):
        x = 5 + i * (box_w + gap)
        for j, kind in enumerate(step):
            y = 5 + j * row_h
            root = kind == root_kind
            fill, stroke = ("#fde8e8", "#b3261e") if root else ("#eef2f7", "#4a5568")
            label = escape(kind.replace("_", " "))
            parts.append(
                f'<g class="step{" root" if root else ""}"><rect x="{x}" y="{y}" width="{box_w}" '
                f'height="{box_h}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{2 if root else 1}"/>'
                f'<text x="{x + box_w / 2}" y="{y + 20}" text-anchor="middle" font-size="13" '
                f'font-weight="{700 if root else 400}">{label}</text>'
                f'<text x="{x + box_w / 2}" y="{y + 37}" text-anchor="middle" font-size="11" fill="#4a5568">'
                f"{'root cause · ' if root else ''}{counts[kind]} event{'s' if counts[kind] != 1 else ''}</text></g>"
            )
        if i + 1 < len(present):
            ax = x + box_w
            parts.append(
                f'<line x1="{ax + 2}" y1="{5 + box_h / 2}" x2="{ax + gap - 4}" y2="{5 + box_h / 2}" '
                f'stroke="#4a5568" stroke-width="2" marker-end="url(#arrow)"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def ticks(top: int, most: int = 5) -> list[int]:
    """Round values from 0 to at least `top` for an axis, at most `most` + 1 of them (steps of 1,
    2 or 5 times a power of ten)."""
    top = max(1, int(top))
    step = 1
    while True:
        for m in (1, 2, 5):
            if top <= most * step * m:
                s = step * m
                return list(range(0, -(-top // s) * s + 1, s))
        step *= 10


def bars(
    series: list[tuple[str, dict[str, int]]], keys: list[tuple[str, str]], height: int = 160, width: int = 1200
) -> str:
    """Grouped bars per bucket: `series` is [(label, {key: value})], `keys` is [(key, colour)]. A
    y axis with round ticks and grid lines; the drawing keeps its proportions when scaled (text is
    never stretched), so buckets share the width instead of the width growing with them."""
    if not series:
        return '<p class="muted">no data yet</p>'
    axis = ticks(max(1, max(v.get(k, 0) for _, v in series for k, _ in keys)))
    top = axis[-1]
    left, right, above, below = 44, 8, 8, 24
    plot_w = width - left - right
    group = plot_w / len(series)
    bw = min(14.0, group * 0.8 / len(keys))
    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height + above + below}" width="100%" role="img" '
        f'style="max-width:{width}px;height:auto" font-family="system-ui, sans-serif">'
    ]
    for t in axis:
        y = above + height - t / top * height
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#a0aec0" if t == 0 else "#e2e8f0"}" stroke-width="1"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#4a5568">{t}</text>'
        )
    every = max(1, math.ceil(64 / group))  # NOTE: a time label every 64 px at most
    for i, (label, values) in enumerate(series):
        x0 = left + i * group + (group - bw * len(keys)) / 2
        for j, (k, colour) in enumerate(keys):
            v = values.get(k, 0)
            h = v / top * height
            parts.append(
                f'<rect x="{x0 + j * bw:.1f}" y="{above + height - h:.1f}" width="{max(1.0, bw - 1):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(label)} {escape(k)}: {v}</title></rect>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{left + (i + 0.5) * group:.1f}" y="{above + height + 16}" text-anchor="middle" '
                f'font-size="11" fill="#4a5568">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def hbars(items: list[tuple[str, int]], colour: str = "#2b6cb0") -> str:
    """One bar per item in a grid: a label column as wide as the longest label (up to 24rem, longer
    ones wrap), the bars' track, the values; so every bar starts at the same x. The layout is in
    the markup, so the dashboard and the HTML report draw it alike."""
    if not items:
        return '<p class="muted">nothing</p>'
    top = max(v for _, v in items) or 1
    rows = [
        f'<span class="lbl" style="overflow-wrap:anywhere">{escape(k)}</span>'
        f'<span class="track"><span class="bar" style="display:block;height:.8rem;width:{max(0.5, v * 100 / top):.1f}%;'
        f'background:{colour}"></span></span><span class="val" style="text-align:right">{v}</span>'
        for k, v in items
    ]
    return (
        '<div class="hbars" style="display:grid;grid-template-columns:fit-content(24rem) minmax(8rem,1fr) max-content;'
        'gap:.25rem .75rem;align-items:center;font-variant-numeric:tabular-nums">' + "".join(rows) + "</div>"
    )


def severity_color(sev: str) -> str:
    return _SEV_COLOR.get(sev, "#4a5568")
