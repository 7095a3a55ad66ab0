"""Inline SVG line charts from roll-up series (server-rendered; no script, no CDN)."""

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 640, 140, 6


@dataclass
class Chart:
    metric: str
    label: str
    points: str
    band: str
    low: float
    high: float
    count: int
    width: int = WIDTH
    height: int = HEIGHT


def chart(metric, label, series, start, end):
    """``series`` is [(bucket, avg, min, max)]: a line of averages over a min–max band."""
    span = max((end - start).total_seconds(), 1)
    low = min(s[2] for s in series)
    high = max(s[3] for s in series)
    rng = (high - low) or 1.0

    def xy(bucket, value):
        x = PAD + (bucket - start).total_seconds() / span * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - (value - low) / rng * (HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    points = " ".join(xy(b, a) for b, a, _, _ in series)
    upper = [xy(b, hi) for b, _, _, hi in series]
    lower = [xy(b, lo) for b, _, lo, _ in reversed(series)]
    return Chart(metric, label, points, " ".join(upper + lower), low, high, len(series))
