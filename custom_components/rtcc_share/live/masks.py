"""The resident's privacy masks: the option, its text form, and their pixels.

A mask is a rectangle `(left, top, right, bottom)` in fractions of the
picture (0 <= left < right <= 1, 0 <= top < bottom <= 1), at most
`MAX_MASKS` of them. The options flow shows them as text, one rectangle per
line as four percentages (`0, 0, 30, 100`).

Pure: no Home Assistant import, no I/O, so every rule is tested in isolation.
"""

from collections.abc import Sequence
from fractions import Fraction
import math
import re
from typing import Final, Literal

MAX_MASKS: Final = 8
# The text form's precision: percentages with at most this many decimals.
PERCENT_DECIMALS: Final = 9

type Mask = tuple[float, float, float, float]
# (x0, y0, x1, y1) in pixels, ends exclusive.
type Box = tuple[int, int, int, int]
type MaskErrorReason = Literal[
    "too_many_masks", "invalid_mask_line", "mask_out_of_range", "empty_mask"
]

# ASCII digits only, a sign so that "-5" reads as out of range, not malformed.
_PERCENT_RE: Final = re.compile(r"-?(?:[0-9]{1,9}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})%?")
_SEPARATOR_RE: Final = re.compile(r"\s*,\s*|\s+")


class InvalidMasksError(ValueError):
    """Masks that cannot be used; the options flow translates `reason`."""

    def __init__(self, reason: MaskErrorReason, line: int | None = None) -> None:
        """Initialize with the reason and the 1-based text line it is about."""
        super().__init__(reason)
        self.reason: MaskErrorReason = reason
        self.line = line


def _checked(values: Sequence[float], line: int | None) -> Mask:
    left, top, right, bottom = values
    if not all(0 <= value <= 1 for value in values):
        raise InvalidMasksError("mask_out_of_range", line)
    if not (left < right and top < bottom):
        raise InvalidMasksError("empty_mask", line)
    return (left, top, right, bottom)


def parse_masks(text: str) -> tuple[Mask, ...]:
    """Return the masks of the form's text; blank lines are skipped.

    Each line holds left, top, right, bottom as percentages of the picture,
    separated by commas or spaces (`0, 0, 30, 100`; a `%` sign is allowed).
    """
    lines = [
        (number, stripped)
        for number, line in enumerate(text.splitlines(), start=1)
        if (stripped := line.strip())
    ]
    if len(lines) > MAX_MASKS:
        raise InvalidMasksError("too_many_masks")
    masks = []
    for number, line in lines:
        fields = _SEPARATOR_RE.split(line)
        if len(fields) != 4 or not all(_PERCENT_RE.fullmatch(f) for f in fields):
            raise InvalidMasksError("invalid_mask_line", number)
        masks.append(
            _checked([float(field.rstrip("%")) / 100 for field in fields], number)
        )
    return tuple(masks)


def _percent(fraction: float, *, up: bool) -> str:
    """Return a fraction as the percentage that reads back as it.

    A fraction no percentage of at most nine decimals reads back as exactly
    is rounded outward (`up` for right and bottom), never shrinking a mask.
    """
    text = f"{fraction * 100:.9f}"
    if float(text) / 100 != fraction:
        scaled = Fraction(fraction) * 100 * 10**PERCENT_DECIMALS
        whole = math.ceil(scaled) if up else math.floor(scaled)
        text = f"{whole // 10**PERCENT_DECIMALS}.{whole % 10**PERCENT_DECIMALS:0{PERCENT_DECIMALS}d}"
    return text.rstrip("0").rstrip(".")


def format_masks(masks: Sequence[Mask]) -> str:
    """Return the form's text for stored masks (the reverse of parse_masks)."""
    return "\n".join(
        ", ".join(_percent(value, up=index >= 2) for index, value in enumerate(mask))
        for mask in masks
    )


def masks_from_option(value: object) -> tuple[Mask, ...]:
    """Return the stored option's masks, checked as strictly as the form's."""
    if not isinstance(value, list | tuple):
        raise InvalidMasksError("invalid_mask_line")
    if len(value) > MAX_MASKS:
        raise InvalidMasksError("too_many_masks")
    masks = []
    for number, mask in enumerate(value, start=1):
        if not (
            isinstance(mask, list | tuple)
            and len(mask) == 4
            and all(
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and math.isfinite(v)
                for v in mask
            )
        ):
            raise InvalidMasksError("invalid_mask_line", number)
        masks.append(_checked([float(v) for v in mask], number))
    return tuple(masks)


def mask_box(mask: Mask, width: int, height: int, grid: int = 1) -> Box:
    """Return the pixels a mask covers in a width x height picture.

    Rounded outward, with exact arithmetic on the stored fractions, so no
    pixel the rectangle touches is left out; then widened to the `grid`
    (the codec's macroblocks), never beyond the picture.
    """
    left, top, right, bottom = (Fraction(value) for value in mask)
    x0 = math.floor(left * width) // grid * grid
    y0 = math.floor(top * height) // grid * grid
    x1 = min(width, -(-math.ceil(right * width) // grid) * grid)
    y1 = min(height, -(-math.ceil(bottom * height) // grid) * grid)
    return (x0, y0, x1, y1)
