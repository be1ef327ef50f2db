"""The one units vocabulary: each unit's canonical name (as fact sheets write it), the
words that say it in a script (for the fact check), and the symbols a script may write for
it with how a voice reads them (for the speech text)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Unit:
    """One unit of measure."""

    name: str
    """Canonical name, as a fact sheet's ``unit:`` writes it (e.g. ``PB/s``)."""

    forms: tuple[str, ...] = ()
    """Lower-case words and symbols that say it after a number in a turn."""

    symbols: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Written symbols a voice reads out: symbol -> (singular, plural) words."""


UNITS: tuple[Unit, ...] = (
    Unit("%", ("percent", "per cent", "%")),
    Unit("x", ("times", "x", "fold")),
    Unit("USD", ("dollars", "dollar", "usd")),
    Unit("transistors", ("transistors",)),
    Unit("cores", ("cores", "compute cores", "tensor cores")),
    Unit(
        "mm2",
        ("square millimetres", "square millimeters", "mm²", "mm2"),
        {
            "mm²": ("square millimeter", "square millimeters"),
            "mm2": ("square millimeter", "square millimeters"),
        },
    ),
    Unit("cm2", symbols={"cm²": ("square centimeter", "square centimeters")}),
    Unit("in", ("inches", "inch")),
    Unit("U", ("rack units", "rack unit"), {"U": ("rack unit", "rack units")}),
    Unit("rack", ("of a rack", "of a standard rack", "of a standard datacenter rack", "racks")),
    Unit("KB", symbols={"KB": ("kilobyte", "kilobytes")}),
    Unit("GB", ("gigabytes", "gigabyte", "gb"), {"GB": ("gigabyte", "gigabytes")}),
    Unit("MB", ("megabytes", "megabyte", "mb"), {"MB": ("megabyte", "megabytes")}),
    Unit("TB", symbols={"TB": ("terabyte", "terabytes")}),
    Unit("PB", symbols={"PB": ("petabyte", "petabytes")}),
    Unit(
        "GB/s",
        ("gigabytes per second", "gigabytes a second", "gb/s"),
        {"GB/s": ("gigabyte per second", "gigabytes per second")},
    ),
    Unit(
        "TB/s",
        ("terabytes per second", "terabytes a second", "tb/s"),
        {"TB/s": ("terabyte per second", "terabytes per second")},
    ),
    Unit(
        "PB/s",
        ("petabytes per second", "petabytes a second", "petabytes/sec", "pb/s"),
        {"PB/s": ("petabyte per second", "petabytes per second")},
    ),
    Unit(
        "Pb/s",
        ("petabits per second", "petabits a second", "petabits/sec"),
        {"Pb/s": ("petabit per second", "petabits per second")},
    ),
    Unit(
        "Tb/s",
        ("terabits per second", "terabits a second", "terabits/sec"),
        {"Tb/s": ("terabit per second", "terabits per second")},
    ),
    Unit(
        "Gb/s",
        ("gigabits per second", "gigabits a second", "gigabit", "gigabits"),
        {
            "Gb/s": ("gigabit per second", "gigabits per second"),
            "Gbps": ("gigabit per second", "gigabits per second"),
            "Gb": ("gigabit", "gigabit"),  # "100 Gb Ethernet": an adjective
        },
    ),
    Unit("W", ("watts", "watt"), {"W": ("watt", "watts")}),
    Unit("kW", ("kilowatts", "kilowatt", "kw"), {"kW": ("kilowatt", "kilowatts")}),
    Unit("MW", ("megawatts", "megawatt", "mw"), {"MW": ("megawatt", "megawatts")}),
    Unit("parameters", ("parameters",)),
    Unit("EFLOPS", ("exaflops",)),
    Unit("PFLOPS", ("petaflops",)),
    Unit("tokens/s", ("tokens a second", "tokens per second", "tokens/s")),
    Unit(
        "nm",
        ("nanometres", "nanometers", "nanometre", "nanometer", "nm"),
        {"nm": ("nanometer", "nanometer")},  # "7 nm process"
    ),
    Unit("mm", symbols={"mm": ("millimeter", "millimeters")}),
    Unit("GHz", symbols={"GHz": ("gigahertz", "gigahertz")}),
    Unit("MHz", symbols={"MHz": ("megahertz", "megahertz")}),
    Unit("kHz", symbols={"kHz": ("kilohertz", "kilohertz")}),
    Unit("ms", symbols={"ms": ("millisecond", "milliseconds")}),
    Unit("°C", symbols={"°C": ("degree Celsius", "degrees Celsius")}),
    Unit("V", symbols={"V": ("volt", "volts")}),
    Unit("systems", ("systems", "machines")),
    Unit("PSU", ("power supplies", "power supply units", "standard power supplies")),
    Unit("links", ("links", "ethernet links")),
    Unit("years", ("years",)),
    Unit("months", ("months",)),
    Unit("day"),  # a day of the month, recognised by the month name beside it
    Unit("year"),  # a bare whole number from 1900 to 2100
)

_CHECKED_BY_CONTEXT = ("day", "year")
FORMS: dict[str, tuple[str, ...]] = {
    unit.name: unit.forms for unit in UNITS if unit.forms or unit.name in _CHECKED_BY_CONTEXT
}
"""Canonical unit -> the words that say it: the units a fact sheet may use."""

SPOKEN: dict[str, tuple[str, str]] = {
    symbol: words for unit in UNITS for symbol, words in unit.symbols.items()
}
"""Written symbol -> (singular, plural) words a voice reads."""
