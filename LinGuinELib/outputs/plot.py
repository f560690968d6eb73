"""trajectory.png: lesion volume over time, one line per lesion (star: the prompt).

Drawn with Pillow, not matplotlib: importing matplotlib took 0.5-0.9 s of every `track` run (more
than writing all the label files), for one small line chart. Pillow draws the same chart in a few
hundredths of a second. Lines are drawn at ``SUPERSAMPLE`` times the size and reduced, so they are
smooth; text is FreeType's. The font is DejaVu Sans (what matplotlib used) from matplotlib's data
folder when it is installed (found without importing it), else Pillow's own.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .colors import lesion_color

WIDTH, HEIGHT = 768, 480  # px (6.4 x 4.0 in at 120 dpi)
SUPERSAMPLE = 2
PAD = 10  # px between the figure's edge, texts and the axes
FONT_PX, TITLE_PX, LEGEND_PX = 16, 19, 13
LINE_PX, DOT_PX, STAR_PX = 2.5, 10, 22  # line width, circle and star marker diameters
GRID, FRAME, INK = (222, 222, 222), (0, 0, 0), (0, 0, 0)


@lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), px)
    try:
        return ImageFont.load_default(px)
    except TypeError:  # Pillow < 10.1 (Slicer's Python may have one): its one small bitmap font
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi], at most ``most``."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(1, most - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = [round(k * step, 10) for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    return ticks or [lo]


def _label(value: float, ticks: list[float]) -> str:
    """A tick's text with as many decimals as the step needs (2.5 needs one more than 2)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    power = math.floor(math.log10(step) + 1e-9)
    decimals = max(0, -power) + (1 if round(step / 10.0**power, 6) == 2.5 else 0)
    return f"{0.0 if abs(value) < 1e-9 else value:.{decimals}f}"


def _padded(lo: float, hi: float) -> tuple[float, float]:
    """The axis range: the data's plus 5% each side (half a unit each side of a single value)."""
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    return lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)


def _fit(text: str, font, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` px."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _paste_text(img: Image.Image, xy: tuple[float, float], text: str, font, anchor: str, angle: int = 0) -> None:
    """Text at ``xy`` with ``anchor`` (Pillow's two letters), optionally turned by ``angle`` degrees."""
    draw = ImageDraw.Draw(img)
    if angle == 0:
        draw.text(xy, text, fill=INK, font=font, anchor=anchor)
        return
    box = draw.textbbox((0, 0), text, font=font, anchor="lt")
    tile = Image.new("L", (box[2] + 2, box[3] + 2), 0)
    ImageDraw.Draw(tile).text((1, 1), text, fill=255, font=font, anchor="lt")
    tile = tile.rotate(angle, expand=True, resample=Image.BICUBIC)
    w, h = tile.size
    x = xy[0] - {"l": 0, "m": w / 2, "r": w}[anchor[0]]
    y = xy[1] - {"t": 0, "m": h / 2, "b": h}[anchor[1]]
    img.paste(Image.new("RGB", tile.size, INK), (round(x), round(y)), tile)


def _star(x: float, y: float, r: float) -> list[tuple[float, float]]:
    return [(x + (r if k % 2 == 0 else 0.4 * r) * math.sin(k * math.pi / 5),
             y - (r if k % 2 == 0 else 0.4 * r) * math.cos(k * math.pi / 5)) for k in range(10)]


def _rgb(k: int) -> tuple[int, int, int]:
    return tuple(round(255 * c) for c in lesion_color(k))  # type: ignore[return-value]


def plot_trajectory(rows: list[dict], lesion_ids: list[str], path: Path, title: str = "") -> None:
    """Write the chart of ``rows`` (``trajectory_rows``) to ``path`` as PNG.

    x: days from the first scan when every scan has a date, else the scans in order (named).
    """
    s = SUPERSAMPLE
    font, small, big = _font(FONT_PX * s), _font(LEGEND_PX * s), _font(TITLE_PX * s)
    img = Image.new("RGB", (WIDTH * s, HEIGHT * s), "white")
    draw = ImageDraw.Draw(img)
    scans = list(dict.fromkeys(r["scan"] for r in rows))
    use_days = all(r["days_from_first"] is not None for r in rows)
    x_of = (lambda r: float(r["days_from_first"])) if use_days else (lambda r: float(scans.index(r["scan"])))
    series = []
    for k, lesion in enumerate(lesion_ids):
        pts = [r for r in rows if r["lesion"] == lesion and r["volume_ml"] is not None]
        series.append((k, lesion, [(x_of(r), float(r["volume_ml"]), r["status"] == "prompt") for r in pts]))
    xs = [p[0] for _, _, pts in series for p in pts] or [0.0]
    ys = [p[1] for _, _, pts in series for p in pts] or [0.0]
    x_lo, x_hi = (min(xs), max(xs)) if use_days else (0.0, max(0.0, len(scans) - 1.0))
    y_lo, y_hi = min(ys), max(ys)
    (x_lo, x_hi), (y_lo, y_hi) = _padded(x_lo, x_hi), _padded(y_lo, y_hi)
    y_ticks = [t for t in nice_ticks(y_lo, y_hi) if y_lo <= t <= y_hi]
    if use_days:
        x_ticks = [t for t in nice_ticks(x_lo, x_hi) if x_lo <= t <= x_hi]
        x_names = [_label(t, x_ticks) for t in x_ticks]
    else:
        x_ticks, x_names = [float(i) for i in range(len(scans))], scans
    y_names = [_label(t, y_ticks) for t in y_ticks]

    # Layout: title on top; y label, tick labels on the left; tick labels, x label below.
    line_h = font.getbbox("Hg")[3]
    tick = 5 * s
    left = PAD * s + line_h + PAD * s + max(font.getlength(t) for t in y_names) + tick + 4 * s
    top = PAD * s + big.getbbox("Hg")[3] + PAD * s
    right = WIDTH * s - PAD * s - 4 * s
    slot = (right - left) / max(1, len(x_ticks))
    turn = not use_days and any(font.getlength(n) > 0.95 * slot for n in x_names)
    names_h = max(font.getlength(n) for n in x_names) if turn else line_h
    names_h = min(names_h, 0.3 * HEIGHT * s)
    bottom = HEIGHT * s - PAD * s - line_h - PAD * s - names_h - tick - 4 * s

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))

    for t in y_ticks:
        y = px(x_lo, t)[1]
        draw.line([(left, y), (right, y)], fill=GRID, width=s)
        draw.line([(left - tick, y), (left, y)], fill=FRAME, width=s)
    for t, name in zip(x_ticks, x_names):
        x = px(t, y_lo)[0]
        draw.line([(x, top), (x, bottom)], fill=GRID, width=s)
        draw.line([(x, bottom), (x, bottom + tick)], fill=FRAME, width=s)
        if turn:
            _paste_text(img, (x, bottom + tick + 4 * s), _fit(name, font, names_h), font, "mt", angle=90)
        else:
            draw.text((x, bottom + tick + 4 * s), name, fill=INK, font=font, anchor="mt")
    for t, name in zip(y_ticks, y_names):
        draw.text((left - tick - 4 * s, px(x_lo, t)[1]), name, fill=INK, font=font, anchor="rm")
    draw.rectangle([left, top, right, bottom], outline=FRAME, width=s)
    draw.text(((left + right) / 2, HEIGHT * s - PAD * s), "days from first scan" if use_days else "scan",
              fill=INK, font=font, anchor="md")
    _paste_text(img, (PAD * s, (top + bottom) / 2), "volume (mL)", font, "lm", angle=90)
    heading = _fit(title or "Lesion volume over time (star: prompt)", big, WIDTH * s - 2 * PAD * s)
    draw.text((WIDTH * s / 2, PAD * s), heading, fill=INK, font=big, anchor="mt")

    for k, _, pts in series:
        colour, where = _rgb(k), [px(x, y) for x, y, _ in pts]
        if len(where) > 1:
            draw.line(where, fill=colour, width=round(LINE_PX * s), joint="curve")
        r = DOT_PX * s / 2
        for x, y in where:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        for (x, y), (_, _, prompt) in zip(where, pts):
            if prompt:
                draw.polygon(_star(x, y, STAR_PX * s / 2), fill=colour, outline=INK, width=s)
    _legend(draw, series, small, (left, top, right, bottom), [p for _, _, pts in series for p in pts], px)
    img.resize((WIDTH, HEIGHT), Image.LANCZOS).save(path, "PNG")


def _legend(draw: ImageDraw.ImageDraw, series, font, axes: tuple[float, ...], points, px) -> None:
    """A framed legend in the corner of the axes that hides the fewest data points."""
    named = [(k, name) for k, name, pts in series if pts]
    if not named:
        return
    s = SUPERSAMPLE
    left, top, right, bottom = axes
    row_h = font.getbbox("Hg")[3] + 4 * s
    sample = 24 * s
    rows_fit = max(1, int((bottom - top - 12 * s) // row_h))
    columns = math.ceil(len(named) / rows_fit)
    per_column = math.ceil(len(named) / columns)
    col_w = sample + 6 * s + min(max(font.getlength(n) for _, n in named), (right - left) / (2 * columns))
    w, h = columns * (col_w + 8 * s) + 6 * s, per_column * row_h + 8 * s
    where = [px(x, y) for x, y, _ in points]
    corners = [(right - w - 6 * s, top + 6 * s), (left + 6 * s, top + 6 * s),
               (right - w - 6 * s, bottom - h - 6 * s), (left + 6 * s, bottom - h - 6 * s)]
    x0, y0 = min(corners, key=lambda c: sum(c[0] <= x <= c[0] + w and c[1] <= y <= c[1] + h for x, y in where))
    draw.rectangle([x0, y0, x0 + w, y0 + h], fill="white", outline=(204, 204, 204), width=s)
    for i, (k, name) in enumerate(named):
        cx = x0 + 6 * s + (i // per_column) * (col_w + 8 * s)
        cy = y0 + 4 * s + (i % per_column) * row_h + row_h / 2
        draw.line([(cx, cy), (cx + sample, cy)], fill=_rgb(k), width=round(LINE_PX * s))
        r = DOT_PX * s / 2
        draw.ellipse([cx + sample / 2 - r, cy - r, cx + sample / 2 + r, cy + r], fill=_rgb(k))
        draw.text((cx + sample + 6 * s, cy), _fit(name, font, col_w - sample - 6 * s), fill=INK, font=font,
                  anchor="lm")
