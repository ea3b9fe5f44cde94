"""Compact text sparklines (`▁▂▄▇`) for trends in Slack and the terminal: the one used by
/metric answers and the Cody Pro post alike."""

from __future__ import annotations

from collections.abc import Sequence

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, scaled between the smallest and largest; a gap (no data)
    is a space. A flat series is a flat line, not a row of full bars."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif span == 0:
            out.append(BARS[len(BARS) // 2 - 1])
        else:
            out.append(BARS[round((v - low) / span * (len(BARS) - 1))])
    return "".join(out)
