"""Small server-side SVG drawings: the causal chain and bar charts. No JavaScript libraries."""

from __future__ import annotations

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


def bars(series: list[tuple[str, dict[str, int]]], keys: list[tuple[str, str]], height: int = 160) -> str:
    """Grouped bars per bucket: `series` is [(label, {key: value})], `keys` is [(key, colour)]."""
    if not series:
        return '<p class="muted">no data yet</p>'
    top = max(1, max(v.get(k, 0) for _, v in series for k, _ in keys))
    bw = 10
    group = bw * len(keys) + 6
    width = max(300, len(series) * group + 40)
    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height + 30}" width="100%" height="{height + 30}" '
        f'preserveAspectRatio="none" role="img">'
    ]
    for i, (label, values) in enumerate(series):
        x0 = 30 + i * group
        for j, (k, colour) in enumerate(keys):
            v = values.get(k, 0)
            h = round(v / top * height)
            parts.append(
                f'<rect x="{x0 + j * bw}" y="{height - h + 5}" width="{bw - 1}" height="{h}" fill="{colour}">'
                f"<title>{escape(label)} {escape(k)}: {v}</title></rect>"
            )
        if i % max(1, len(series) // 8) == 0:
            parts.append(f'<text x="{x0}" y="{height + 22}" font-size="10" fill="#4a5568">{escape(label)}</text>')
    parts.append(f'<text x="0" y="14" font-size="10" fill="#4a5568">{top}</text></svg>')
    return "".join(parts)


def hbars(items: list[tuple[str, int]], colour: str = "#2b6cb0") -> str:
    if not items:
        return '<p class="muted">nothing</p>'
    top = max(v for _, v in items) or 1
    rows = [
        f'<div class="hbar"><span class="lbl">{escape(k)}</span><span class="bar" style="width:{max(2, v * 100 // top)}%;'
        f'background:{colour}"></span><span class="val">{v}</span></div>'
        for k, v in items
    ]
    return "".join(rows)


def severity_color(sev: str) -> str:
    return _SEV_COLOR.get(sev, "#4a5568")
