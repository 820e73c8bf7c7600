"""The digest's charts as PNG pictures (matplotlib, Agg, no display), embedded in both the PDF and the HTML.

Figures are built with the object API (`Figure`), not pyplot: no global state, safe in a worker thread.
"""

import io

from matplotlib.figure import Figure

from services.reporting.digest.figures import Compliance, Digest, Period

GREEN, RED, GREY, BLUE = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0"
DPI = 150


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float = 7.0, height: float = 2.6) -> Figure:
    figure = Figure(figsize=(width, height))
    figure.set_layout_engine("constrained")
    return figure


def trend_chart(digest: Digest) -> bytes:
    """Persons with / without the required PPE per local day (weekly) or hour (daily), and the rate."""
    daily = digest.window.period is Period.DAILY
    points: list[tuple[str, Compliance]] = [
        (f"{moment:%H}" if daily else f"{moment:%a %d}", counts) for moment, counts in digest.trend
    ]
    figure = _figure()
    axes = figure.add_subplot()
    labels = [label for label, _ in points]
    with_ = [c.persons_with for _, c in points]
    without = [c.persons_without for _, c in points]
    axes.bar(labels, with_, color=GREEN, label="with PPE")
    axes.bar(labels, without, bottom=with_, color=RED, label="without PPE")
    axes.set_ylabel("persons observed")
    axes.set_ylim(0, max([w + wo for w, wo in zip(with_, without, strict=True)], default=1) * 1.3)  # legend room
    axes.set_xlabel("local hour" if daily else "local day")
    axes.spines[["top"]].set_visible(False)
    rate_axes = axes.twinx()
    rates = [None if c.rate is None else c.rate * 100 for _, c in points]
    rate_axes.plot(labels, [float("nan") if r is None else r for r in rates], color=BLUE, marker="o",
                   label="compliance rate")
    rate_axes.set_ylim(0, 130)
    rate_axes.set_yticks([0, 20, 40, 60, 80, 100])
    rate_axes.set_ylabel("compliance rate (%)")
    handles = [*axes.get_legend_handles_labels()[0], *rate_axes.get_legend_handles_labels()[0]]
    axes.legend(handles=handles, loc="upper left", fontsize=7, frameon=False, ncols=3)
    axes.set_title("Compliance over the period", fontsize=10, loc="left")
    if not points:
        axes.text(0.5, 0.5, "no person observed", transform=axes.transAxes, ha="center", color=GREY)
    return _png(figure)


def hours_chart(digest: Digest) -> bytes:
    """Persons without the required PPE by local hour of day (the site's time zone)."""
    figure = _figure(height=2.2)
    axes = figure.add_subplot()
    hours = list(range(24))
    counts = [digest.violations_by_hour.get(hour, 0) for hour in hours]
    axes.bar(hours, counts, color=RED)
    axes.set_xticks(hours, [f"{hour:02d}" for hour in hours], fontsize=7)
    axes.set_xlabel(f"local hour of day ({digest.window.timezone})")
    axes.set_ylabel("persons without PPE")
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title("When violations happen", fontsize=10, loc="left")
    return _png(figure)


def zones_chart(digest: Digest) -> bytes:
    """Compliance rate per zone (decided observations only)."""
    zones = [zone for zone in digest.zones if zone.rate is not None]
    figure = _figure(height=max(1.2, 0.35 * len(zones) + 0.8))
    axes = figure.add_subplot()
    names = [zone.label.replace("$", r"\$") for zone in zones]  # a "$" would start matplotlib's mathtext
    rates = [(zone.rate or 0.0) * 100 for zone in zones]
    bars = axes.barh(names, rates, color=[GREEN if rate >= 90 else RED for rate in rates])
    axes.bar_label(bars, labels=[f"{rate:.1f} %" for rate in rates], fontsize=7, padding=2)
    axes.set_xlim(0, 110)
    axes.invert_yaxis()
    axes.set_xlabel("compliance rate (%)")
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title("Compliance by zone", fontsize=10, loc="left")
    return _png(figure)


def charts(digest: Digest) -> dict[str, bytes]:
    """Name -> PNG, in the order the digest shows them."""
    return {"trend": trend_chart(digest), "zones": zones_chart(digest), "hours": hours_chart(digest)}
