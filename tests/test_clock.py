"""The one time formatter, in each of the forms the outputs use."""

from __future__ import annotations

import pytest

from pipeline.clock import clock


@pytest.mark.parametrize(
    ("seconds", "kwargs", "expected"),
    [
        (65.9, {}, "1:05"),  # pages
        (65.9, {"pad": True}, "01:05"),  # show notes
        (3725.5, {"pad": True}, "1:02:05"),
        (65.9, {"hours": True, "rounded": True}, "0:01:06"),  # itunes:duration
        (3725.5, {"millis": ","}, "01:02:05,500"),  # SRT
        (5.4, {"millis": "."}, "00:00:05.400"),  # WebVTT
        (59.9996, {"millis": "."}, "00:01:00.000"),  # milliseconds carry into the minute
    ],
)
def test_clock_forms(seconds, kwargs, expected) -> None:
    assert clock(seconds, **kwargs) == expected
