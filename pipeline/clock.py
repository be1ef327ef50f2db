"""Times as people and formats write them: the one formatter for show notes, pages, feeds
and captions."""

from __future__ import annotations


def clock(
    seconds: float,
    *,
    hours: bool = False,
    pad: bool = False,
    millis: str | None = None,
    rounded: bool = False,
) -> str:
    """``seconds`` as M:SS, or H:MM:SS once there are hours (``hours``: always).

    ``pad`` writes minutes as two digits (MM:SS); ``millis`` adds milliseconds after that
    separator, every field two digits (captions: ``00:01:02.500``); ``rounded`` rounds to
    the nearest second instead of truncating.
    """
    if millis is not None:
        total = round(seconds * 1000)
        whole, ms = divmod(total, 1000)
        h, rest = divmod(whole, 3600)
        return f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}{millis}{ms:03d}"
    whole = round(seconds) if rounded else int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    if h or hours:
        return f"{h}:{m:02d}:{s:02d}"
    return f"{m:02d}:{s:02d}" if pad else f"{m}:{s:02d}"


def spoken_clock(seconds: float) -> str:
    """``seconds`` as a screen reader should say it: ``12 minutes 5 seconds``."""
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    parts = [(h, "hour"), (m, "minute"), (s, "second")]
    said = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return " ".join(said) or "0 seconds"
