"""Tests for painting the privacy masks into decoded frames."""

import io

import av
import numpy as np
from PIL import Image
import pytest

from custom_components.rtcc_share.live.mask_frames import (
    BLACK_LUMA,
    NEUTRAL_CHROMA,
    FrameMasker,
    jpeg,
    output_size,
)
from custom_components.rtcc_share.live.masks import Mask, mask_box

from .mask_video import bright_planes

MASKS: tuple[Mask, ...] = ((0.1, 0.05, 0.33, 0.5), (0.61, 0.42, 0.9, 0.97))


def _frame(width: int, height: int, index: int = 3) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(
        bright_planes(index, width, height), format="yuv420p"
    )


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    assert frame.format.name == "yuv420p"
    return [
        np.frombuffer(plane, np.uint8)
        .reshape(-1, plane.line_size)[: plane.height, : plane.width]
        .copy()
        for plane in frame.planes
    ]


def _painted(width: int, height: int) -> np.ndarray:
    """Return where the masks paint: whole macroblocks around each mask."""
    painted = np.zeros((height, width), dtype=bool)
    for mask in MASKS:
        x0, y0, x1, y1 = mask_box(mask, width, height, 16)
        painted[y0:y1, x0:x1] = True
    return painted


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), (1280, 720)),
        ((640, 360), (640, 360)),
        ((1920, 1080), (1280, 720)),
        ((2560, 1920), (1280, 960)),
        ((2688, 1520), (1280, 724)),
        ((720, 1280), (720, 1280)),
        ((641, 361), (640, 360)),
        ((1, 1), (2, 2)),
    ],
)
def test_output_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    """At most 1280 wide, the aspect kept, both sides even."""
    assert output_size(*size) == expected


def test_paints_black_boxes_exactly() -> None:
    """Luma 16 and chroma 128 on whole macroblocks around each mask; the rest kept."""
    frame = _frame(352, 288)
    before = _planes(frame)
    masker = FrameMasker(MASKS, 352, 288)
    after = _planes(masker.apply(frame))
    painted = _painted(352, 288)
    assert (after[0][painted] == BLACK_LUMA).all()
    assert (after[0][~painted] == before[0][~painted]).all()
    chroma = painted[::2, ::2]
    for plane in (1, 2):
        assert (after[plane][chroma] == NEUTRAL_CHROMA).all()
        assert (after[plane][~chroma] == before[plane][~chroma]).all()


def test_never_writes_into_the_decoders_frames(
    tmp_path: pytest.TempPathFactory,
) -> None:
    """The decoder's own frames are never painted.

    Later frames are predicted from earlier ones, so they decode exactly as
    without masking.
    """
    path = str(tmp_path / "clip.mp4")  # type: ignore[operator]
    with av.open(path, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for index in range(20):
            container.mux(stream.encode(_frame(160, 96, index)))
        container.mux(stream.encode())

    def decoded(masker: FrameMasker | None) -> list[np.ndarray]:
        frames = []
        with av.open(path) as container:
            for frame in container.decode(video=0):
                frames.append(_planes(frame)[0])
                if masker is not None:
                    masker.apply(frame)
        return frames

    plain = decoded(None)
    masked = decoded(FrameMasker(MASKS, 160, 96))
    assert all((a == b).all() for a, b in zip(plain, masked, strict=True))


def test_scales_down_then_paints() -> None:
    """A 1080p frame becomes 720p with the boxes painted at the output size."""
    masker = FrameMasker(MASKS, *output_size(1920, 1080))
    out = masker.apply(_frame(1920, 1080))
    assert (out.width, out.height) == (1280, 720)
    luma = _planes(out)[0]
    painted = _painted(1280, 720)
    assert (luma[painted] == BLACK_LUMA).all()
    assert luma[~painted].mean() > 100


def test_full_range_source_becomes_limited_range() -> None:
    """A full-range (JPEG) picture is converted, so black is luma 16 there too."""
    planes = bright_planes(3, 352, 288)
    frame = av.VideoFrame.from_ndarray(planes, format="yuvj420p")
    out = FrameMasker(MASKS, 352, 288).apply(frame)
    assert out.format.name == "yuv420p"
    luma = _planes(out)[0]
    painted = _painted(352, 288)
    assert (luma[painted] == BLACK_LUMA).all()
    # Full range squeezed into 16-235.
    full = planes[:288][~painted].astype(float)
    assert luma[~painted].mean() == pytest.approx(16 + full.mean() * 219 / 255, abs=1)


def test_jpeg_is_masked() -> None:
    """The snapshot shows the masks black and the rest of the picture."""
    out = FrameMasker(MASKS, 352, 288).apply(_frame(352, 288))
    image = np.asarray(Image.open(io.BytesIO(jpeg(out))).convert("L"))
    assert image.shape == (288, 352)
    for mask in MASKS:
        x0, y0, x1, y1 = mask_box(mask, 352, 288)
        # JPEG's own lossy coding and chroma upsampling may bring a shade
        # of the neighbouring picture's colour to the edge: nothing more.
        assert image[y0:y1, x0:x1].max() <= 20
    assert image[~_painted(352, 288)].mean() > 100
