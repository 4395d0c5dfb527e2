"""The trend's chart: the geometry of a server-rendered SVG (volume bars and a compliance line),
drawn by consultations/staff/_trend.html."""

from dataclasses import dataclass, field

from consultations.dashboard.trend import TrendDay


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    day: TrendDay


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    day: TrendDay


@dataclass(frozen=True)
class ChartLabel:
    x: float
    y: float
    text: str


@dataclass
class TrendChart:
    """Geometry of the server-rendered SVG: volume bars and a compliance line."""

    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    max_volume: int = 0
    bars: list[ChartBar] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # SVG `points`, broken where a day has no figure
    points: list[ChartPoint] = field(default_factory=list)
    x_labels: list[ChartLabel] = field(default_factory=list)
    volume_labels: list[ChartLabel] = field(default_factory=list)
    share_labels: list[ChartLabel] = field(default_factory=list)
    gridlines: list[float] = field(default_factory=list)


def nice_ceiling(value: int) -> int:
    """The axis maximum: the smallest of 2, 4, 6, 8, 10, 20, 40, 50, 60, 80, 100, 200… not below
    `value`, so the halfway gridline falls on a whole number too."""
    magnitude = 1
    while True:
        for step in (2, 4, 5, 6, 8, 10) if magnitude > 1 else (2, 4, 6, 8, 10):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def trend_chart(days: list[TrendDay], width: int = 720, height: int = 240) -> TrendChart:
    left, right, top, bottom = 44.0, width - 48.0, 12.0, height - 28.0
    chart = TrendChart(width, height, left, right, top, bottom)
    if not days:
        return chart
    plot_height = bottom - top
    slot = (right - left) / len(days)
    max_volume = chart.max_volume = nice_ceiling(max(day.received for day in days))
    segment: list[str] = []
    for index, day in enumerate(days):
        bar_height = plot_height * day.received / max_volume
        chart.bars.append(
            ChartBar(
                x=round(left + index * slot + slot * 0.15, 1),
                y=round(bottom - bar_height, 1),
                width=round(slot * 0.7, 1),
                height=round(bar_height, 1),
                day=day,
            )
        )
        centre = round(left + index * slot + slot / 2, 1)
        if day.compliance is None:
            if segment:
                chart.lines.append(" ".join(segment))
            segment = []
        else:
            y = round(bottom - plot_height * day.compliance, 1)
            segment.append(f"{centre},{y}")
            chart.points.append(ChartPoint(x=centre, y=y, day=day))
        # Weekly labels counted back from today, so the last day is always labelled.
        if (len(days) - 1 - index) % 7 == 0:
            chart.x_labels.append(ChartLabel(x=centre, y=height - 8, text=day.day.strftime("%d %b")))
    if segment:
        chart.lines.append(" ".join(segment))
    _add_axes(chart, max_volume)
    return chart


def _add_axes(chart: TrendChart, max_volume: int) -> None:
    """Gridlines at 0, 50 and 100 %, with the share on the right and the volume on the left."""
    plot_height = chart.plot_bottom - chart.plot_top
    for fraction in (0.0, 0.5, 1.0):
        y = round(chart.plot_bottom - plot_height * fraction, 1)
        chart.gridlines.append(y)
        chart.share_labels.append(ChartLabel(x=chart.plot_right + 6, y=y + 4, text=f"{fraction * 100:.0f}%"))
        chart.volume_labels.append(ChartLabel(x=chart.plot_left - 6, y=y + 4, text=f"{max_volume * fraction:.0f}"))
