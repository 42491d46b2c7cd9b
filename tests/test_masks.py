"""Tests for the privacy masks' option, its text form and their pixels (pure)."""

import ast
from fractions import Fraction
import math
from pathlib import Path

from hypothesis import given, strategies as st
import pytest

from custom_components.rtcc_share.live.masks import (
    MAX_MASKS,
    InvalidMasksError,
    Mask,
    format_masks,
    mask_box,
    masks_from_option,
    parse_masks,
)

MODULE = (
    Path(__file__).parent.parent
    / "custom_components"
    / "rtcc_share"
    / "live"
    / "masks.py"
)


def test_no_home_assistant_import() -> None:
    """The option's rules are tested without Home Assistant: none is imported."""
    modules = [
        name
        for node in ast.walk(ast.parse(MODULE.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [alias.name for alias in node.names]
        )
    ]
    assert not [name for name in modules if name.startswith("homeassistant")]


@pytest.mark.parametrize(
    ("text", "masks"),
    [
        ("", ()),
        ("\n  \n", ()),
        ("0, 0, 30, 100", ((0.0, 0.0, 0.3, 1.0),)),
        ("0 0 30 100", ((0.0, 0.0, 0.3, 1.0),)),
        ("0%, 0%, 30%, 100%", ((0.0, 0.0, 0.3, 1.0),)),
        ("  12.5 ,7.25,  50.,99.9  ", ((0.125, 0.0725, 0.5, 0.999),)),
        (".5, 0, 1, 1", ((0.005, 0.0, 0.01, 0.01),)),
        (
            "0, 0, 30, 100\n\n70, 0, 100, 25\r\n",
            ((0.0, 0.0, 0.3, 1.0), (0.7, 0.0, 1.0, 0.25)),
        ),
    ],
)
def test_parse(text: str, masks: tuple[Mask, ...]) -> None:
    """One rectangle per line as percentages; blank lines skipped."""
    parsed = parse_masks(text)
    assert len(parsed) == len(masks)
    for got, expected in zip(parsed, masks, strict=True):
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ("\n".join(["0, 0, 10, 10"] * (MAX_MASKS + 1)), "too_many_masks", None),
        ("0, 0, 10", "invalid_mask_line", 1),
        ("0, 0, 10, 10, 10", "invalid_mask_line", 1),
        ("0, 0, 10, 10\n0; 0; 10; 10", "invalid_mask_line", 2),
        ("a, 0, 10, 10", "invalid_mask_line", 1),
        ("1e1, 0, 10, 10", "invalid_mask_line", 1),
        ("nan, 0, 10, 10", "invalid_mask_line", 1),
        ("inf, 0, 100, 10", "invalid_mask_line", 1),
        ("+5, 0, 10, 10", "invalid_mask_line", 1),
        ("٣, 0, 10, 10", "invalid_mask_line", 1),
        ("0,, 0, 10, 10", "invalid_mask_line", 1),
        ("0, 0, 10, 10%%", "invalid_mask_line", 1),
        ("-5, 0, 10, 10", "mask_out_of_range", 1),
        ("0, 0, 100.5, 10", "mask_out_of_range", 1),
        ("\n\n0, 0, 10, 101", "mask_out_of_range", 3),
        ("30, 0, 30, 100", "empty_mask", 1),
        ("0, 50, 100, 40", "empty_mask", 1),
    ],
)
def test_parse_errors(text: str, reason: str, line: int | None) -> None:
    """Each mistake gets the code the options flow translates, with its line."""
    with pytest.raises(InvalidMasksError) as err:
        parse_masks(text)
    assert (err.value.reason, err.value.line) == (reason, line)


def test_eight_masks_are_allowed() -> None:
    """The limit is inclusive."""
    assert len(parse_masks("\n".join(["0, 0, 10, 10"] * MAX_MASKS))) == MAX_MASKS


def test_format() -> None:
    """Stored fractions read as the percentages the resident typed."""
    masks = parse_masks("0, 0, 30, 100\n70, 0, 100, 25\n33.33, 12.5, 66.67, 87.5")
    assert format_masks(masks) == (
        "0, 0, 30, 100\n70, 0, 100, 25\n33.33, 12.5, 66.67, 87.5"
    )
    assert format_masks(()) == ""


_fractions = st.floats(min_value=0, max_value=1, allow_nan=False)


@st.composite
def _masks(draw: st.DrawFn) -> Mask:
    a, b, c, d = (draw(_fractions) for _ in range(4))
    if a == b or c == d:
        return (0.0, 0.0, 1.0, 1.0)
    return (min(a, b), min(c, d), max(a, b), max(c, d))


@given(st.lists(_masks(), max_size=MAX_MASKS))
def test_text_round_trip(masks: list[Mask]) -> None:
    """The form's text reads back as a valid option that is never smaller.

    Masks that came from the form read back exactly.
    """
    parsed = parse_masks(format_masks(masks))
    assert len(parsed) == len(masks)
    for (left, top, right, bottom), (x0, y0, x1, y1) in zip(masks, parsed, strict=True):
        assert x0 <= left and y0 <= top and right <= x1 and bottom <= y1
        # At most one unit of the text's last decimal (1e-9 %).
        assert max(left - x0, top - y0, x1 - right, y1 - bottom) < 2e-11
    assert parse_masks(format_masks(parsed)) == parsed
    assert masks_from_option([list(mask) for mask in parsed]) == parsed


def test_from_option() -> None:
    """The stored option is checked as strictly as the form."""
    assert masks_from_option([]) == ()
    assert masks_from_option([[0, 0, 0.3, 1], (0.5, 0.5, 1, 1)]) == (
        (0.0, 0.0, 0.3, 1.0),
        (0.5, 0.5, 1.0, 1.0),
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "invalid_mask_line"),
        ("0, 0, 1, 1", "invalid_mask_line"),
        ([[0, 0, 1, 1]] * (MAX_MASKS + 1), "too_many_masks"),
        ([[0, 0, 1]], "invalid_mask_line"),
        ([[0, 0, 1, "1"]], "invalid_mask_line"),
        ([[0, 0, 1, True]], "invalid_mask_line"),
        ([[0, 0, 1, math.nan]], "invalid_mask_line"),
        ([[0, 0, math.inf, 1]], "invalid_mask_line"),
        ([[0, 0, 1.5, 1]], "mask_out_of_range"),
        ([[-0.1, 0, 1, 1]], "mask_out_of_range"),
        ([[0.5, 0, 0.5, 1]], "empty_mask"),
    ],
)
def test_from_option_errors(value: object, reason: str) -> None:
    """A stored option that is not a valid list of masks is refused."""
    with pytest.raises(InvalidMasksError) as err:
        masks_from_option(value)
    assert err.value.reason == reason


def test_box_rounds_outward() -> None:
    """A partly covered pixel is masked; the box never leaves the picture."""
    assert mask_box((0.0, 0.0, 0.3, 1.0), 100, 50) == (0, 0, 30, 50)
    assert mask_box((0.101, 0.201, 0.299, 0.399), 100, 100) == (10, 20, 30, 40)
    assert mask_box((0.999, 0.999, 1.0, 1.0), 100, 100) == (99, 99, 100, 100)
    # The float nearest 0.3 is a hair below it: the pixel it touches counts.
    assert mask_box((0.3, 0.0, 1.0, 1.0), 1280, 720)[0] == 383


def test_box_on_the_grid() -> None:
    """Boxes widen to whole macroblocks, clipped at the picture's edge."""
    assert mask_box((0.101, 0.201, 0.299, 0.399), 352, 288, 16) == (32, 48, 112, 128)
    assert mask_box((0.9, 0.9, 1.0, 1.0), 360, 200, 16) == (320, 176, 360, 200)


@given(
    mask=_masks(),
    width=st.integers(1, 4000),
    height=st.integers(1, 3000),
    grid=st.sampled_from([1, 2, 8, 16]),
)
def test_box_covers_every_touched_pixel(
    mask: Mask, width: int, height: int, grid: int
) -> None:
    """Every pixel the exact rectangle overlaps is inside the box."""
    x0, y0, x1, y1 = mask_box(mask, width, height, grid)
    left, top, right, bottom = (Fraction(value) for value in mask)
    assert 0 <= x0 < x1 <= width
    assert 0 <= y0 < y1 <= height
    assert x0 <= left * width and right * width <= x1
    assert y0 <= top * height and bottom * height <= y1
    assert x0 % grid == y0 % grid == 0
    assert x1 % grid == 0 or x1 == width
    assert y1 % grid == 0 or y1 == height
