"""What the resident reads, in the language Home Assistant is set to.

Notification and logbook texts live in the translation files' `exceptions`
category: custom integrations have no category meant for them, and it is the
one whose strings take placeholders in hassfest's schema. Reason labels are
the event entity's `reason` attribute states; incident type labels, the
options of the accepted incident types' selector. Times are local, in the
language's convention; distances in Home Assistant's unit system. Values the
city supplies are neutralised before they reach a text, so an id cannot
carry a link, an image (a tracking pixel) or formatting into what the
resident reads, nor make it read differently from what it says: every
control character (C0, DEL, C1), format character (bidi embeddings,
overrides, isolates and marks, zero-width spaces and joiners, soft hyphens,
tags), other default-ignorable (invisible) character and line or paragraph
separator is shown as one visible U+FFFD per run. The audit log keeps the
exact text the city sent.
"""

from collections.abc import Callable
from datetime import datetime
from itertools import groupby
import re
from typing import Any, Final
import unicodedata

from homeassistant.const import UnitOfLength
from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import (
    async_get_cached_translations,
    async_get_translations,
)
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_conversion import DistanceConverter
from homeassistant.util.unit_system import UnitSystem

from .const import CONF_ALLOWED_INCIDENT_TYPES, DOMAIN

CATEGORIES: Final = ("exceptions", "entity", "selector")
_PREFIX: Final = f"component.{DOMAIN}."
_REASON_KEY: Final = "entity.event.activation.state_attributes.reason.state."
# The incident types' labels: the options of the accepted types' selector.
_INCIDENT_TYPE_KEY: Final = f"selector.{CONF_ALLOWED_INCIDENT_TYPES}.options."
# A language's clock as a CLDR short time pattern ("h:mm a", "H:mm"): Home
# Assistant keeps no user's time format on the server; the frontend, by
# default, follows the language's convention too.
_CLOCK_KEY: Final = "exceptions.time_format.message"
_CLOCK_DEFAULT: Final = "HH:mm"
_CLOCK_FIELDS: Final = re.compile(r"HH|H|hh|h|mm|a")
# Below this many feet a distance reads in feet, above it in miles.
_FEET_UP_TO: Final = 1000
# Markdown's punctuation, HTML's brackets and the backslash itself.
_MARKDOWN: Final = re.compile(r"([\\`*_{}\[\]()<>!|~])")
# What forms links, images, HTML and emphasis where no escape is rendered.
_MARKUP: Final = re.compile(r"[\[\]()<>`*!|~\\]")
# Controls, format characters (Cf: every bidi control, U+200B-U+200D, U+2060,
# U+FEFF, U+00AD, tags), line and paragraph separators, lone surrogates.
_HIDDEN: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Unicode's Default_Ignorable_Code_Point, which also has invisible letters and
# marks (Hangul fillers, variation selectors, the grapheme joiner).
_IGNORABLE: Final = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
SHOWN_FOR_HIDDEN: Final = "\ufffd"
# The fields of bus events and entity attributes whose values the city chose.
CITY_FIELDS: Final = ("activation_id", "incident_id", "incident_type", "operator_id")


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN or bool(_IGNORABLE.match(char))


def visible(value: Any) -> str:
    """Return a city-supplied value with each run of hidden characters shown as �.

    A value is seen as it is stored, in logical order: nothing the city sends
    can reorder, hide or break what the resident reads around it.
    """
    return "".join(
        SHOWN_FOR_HIDDEN if hidden else "".join(run)
        for hidden, run in groupby(str(value), key=_hidden)
    )


def markdown_escape(value: Any) -> str:
    """Return a city-supplied value that Markdown renders as the text it is."""
    return _MARKDOWN.sub(r"\\\1", visible(value))


def plain(value: Any) -> str:
    """Return a city-supplied value with markup characters removed."""
    return _MARKUP.sub("", visible(value))


class Texts:
    """The integration's translated strings in one language."""

    def __init__(self, strings: dict[str, str]) -> None:
        """Hold the flattened translations (`component.rtcc_share.…` keys)."""
        self._strings = strings

    def text(self, key: str, **placeholders: Any) -> str:
        """Return the text `key` of the `exceptions` category, filled in."""
        template = self._strings.get(f"{_PREFIX}exceptions.{key}.message", key)
        return template.format(**placeholders)

    def reason(self, code: Any) -> str:
        """Return a reason code as the resident reads it."""
        name = str(code)
        return self._strings.get(_PREFIX + _REASON_KEY + name, name.replace("_", " "))

    def incident_type(self, code: Any, clean: Callable[[Any], str]) -> str:
        """Return an incident type's label, or the (neutralised) code the city sent."""
        label = self._strings.get(f"{_PREFIX}{_INCIDENT_TYPE_KEY}{code}")
        return label if label is not None else clean(code)

    def clock(self, moment: datetime) -> str:
        """Return a moment in Home Assistant's time zone, as the language writes it."""
        local = dt_util.as_local(moment)
        hour12 = local.hour % 12 or 12
        fields = {
            "HH": f"{local.hour:02}",
            "H": str(local.hour),
            "hh": f"{hour12:02}",
            "h": str(hour12),
            "mm": f"{local.minute:02}",
            "a": "AM" if local.hour < 12 else "PM",
        }
        pattern = self._strings.get(_PREFIX + _CLOCK_KEY, _CLOCK_DEFAULT)
        return _CLOCK_FIELDS.sub(lambda field: fields[field[0]], pattern)

    def distance(self, meters: float, units: UnitSystem) -> str:
        """Return a distance in the unit system Home Assistant is set to, rounded."""
        if units.length_unit != UnitOfLength.MILES:
            return self.text("distance_meters", meters=_rounded(meters))
        feet = DistanceConverter.convert(meters, UnitOfLength.METERS, UnitOfLength.FEET)
        if feet < _FEET_UP_TO:
            return self.text("distance_feet", feet=_rounded(feet))
        miles = DistanceConverter.convert(
            meters, UnitOfLength.METERS, UnitOfLength.MILES
        )
        whole, tenth = divmod(round(miles * 10), 10)
        return self.text("distance_miles", whole=whole, tenth=tenth)

    def duration(self, seconds: Any) -> str:
        """Return a duration as `1 h 2 min`, `5 min 3 s` or `45 s`."""
        minutes, secs = divmod(int(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        if hours:
            return self.text("duration_hours", hours=hours, minutes=minutes)
        if minutes:
            return self.text("duration_minutes", minutes=minutes, seconds=secs)
        return self.text("duration_seconds", seconds=secs)


def _rounded(value: float) -> int:
    """Round to tens, or to ones below 100: what a notification needs."""
    return round(value) if value < 100 else int(round(value, -1))


async def async_texts(hass: HomeAssistant) -> Texts:
    """Load (once) and return the texts in Home Assistant's language."""
    strings: dict[str, str] = {}
    for category in CATEGORIES:
        strings |= await async_get_translations(
            hass, hass.config.language, category, [DOMAIN]
        )
    return Texts(strings)


def cached_texts(hass: HomeAssistant) -> Texts:
    """Return the texts already loaded, for code that cannot wait."""
    strings: dict[str, str] = {}
    for category in CATEGORIES:
        strings |= async_get_cached_translations(
            hass, hass.config.language, category, DOMAIN
        )
    return Texts(strings)
