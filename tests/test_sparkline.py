"""The one text sparkline, shared by /metric answers and the Cody Pro post."""

import pytest

from bot.sparkline import BARS, sparkline


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], BARS),
        ([8, 1], BARS[-1] + BARS[0]),
        ([0.5, 1.0], BARS[0] + BARS[-1]),
        # flat: a steady middle line, neither "at the top" nor "at zero"
        ([5, 5, 5], "▄▄▄"),
        ([5, None, 5], "▄ ▄"),  # a gap (no data) is a space
        ([None, 1, 3], " ▁█"),
        ([None, None], ""),
        ([], ""),
    ],
)
def test_sparkline_scales_between_lowest_and_highest(values, expected):
    assert sparkline(values) == expected


def test_sparkline_has_one_character_per_value():
    assert len(sparkline([500 + 3 * i for i in range(30)])) == 30
