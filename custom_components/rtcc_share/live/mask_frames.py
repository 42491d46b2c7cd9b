"""The masked picture, one decoded frame at a time: its size, its black boxes.

Every masked view (stream and snapshot) goes through `FrameMasker.apply`,
so they are masked alike. Painting writes the decoded YUV 4:2:0 planes
directly: black is luma 16 and chroma 128, never a blur (which leaks shapes
and motion). Boxes are rounded outward and widened to H.264's 16-pixel
macroblocks, so no macroblock mixes masked and unmasked pixels: lossy coding
has nothing of the camera's to carry into the black.

Blocking and CPU-bound: only ever called from a worker thread or the
executor. No Home Assistant import.
"""

from collections.abc import Sequence
import io
from typing import Final

import av
from av.video.reformatter import ColorRange, VideoReformatter
import numpy as np
from PIL import Image

from .masks import Box, Mask, mask_box

MAX_WIDTH: Final = 1280
MACROBLOCK: Final = 16
PIXEL_FORMAT: Final = "yuv420p"
BLACK_LUMA: Final = 16
NEUTRAL_CHROMA: Final = 128
JPEG_QUALITY: Final = 85


def output_size(width: int, height: int) -> tuple[int, int]:
    """Return the masked picture's size: at most MAX_WIDTH wide, aspect kept, even."""
    out_width = max(2, min(width, MAX_WIDTH) // 2 * 2)
    out_height = max(2, round(height * out_width / width / 2) * 2)
    return out_width, out_height


def _chroma_box(box: Box) -> Box:
    # 4:2:0: a chroma sample covers 2x2 luma pixels; rounded outward too.
    x0, y0, x1, y1 = box
    return (x0 // 2, y0 // 2, -(-x1 // 2), -(-y1 // 2))


def _plane_pixels(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """Return a writable view of a plane's visible pixels (no copy)."""
    return np.ndarray(
        (plane.height, plane.width),
        np.uint8,
        buffer=plane,
        strides=(plane.line_size, 1),
    )


class FrameMasker:
    """Turn decoded frames of any size and format into masked output frames."""

    def __init__(self, masks: Sequence[Mask], width: int, height: int) -> None:
        """Prepare the boxes for output frames of this size (see output_size)."""
        self.width, self.height = width, height
        self._reformatter = VideoReformatter()
        luma = [mask_box(mask, width, height, MACROBLOCK) for mask in masks]
        self.boxes: tuple[tuple[Box, ...], ...] = (
            tuple(luma),
            tuple(_chroma_box(box) for box in luma),
            tuple(_chroma_box(box) for box in luma),
        )

    def apply(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Return the frame at the output size and format with every mask painted.

        The result never shares memory with the decoder's own frames (which
        later frames are predicted from).
        """
        out = self._reformatter.reformat(
            frame,
            width=self.width,
            height=self.height,
            format=PIXEL_FORMAT,
            src_color_range=frame.color_range,
            dst_color_range=ColorRange.MPEG,
        )
        out.make_writable()
        for plane, boxes, value in zip(
            out.planes,
            self.boxes,
            (BLACK_LUMA, NEUTRAL_CHROMA, NEUTRAL_CHROMA),
            strict=True,
        ):
            pixels = _plane_pixels(plane)
            for x0, y0, x1, y1 in boxes:
                pixels[y0:y1, x0:x1] = value
        return out


def jpeg(frame: av.VideoFrame) -> bytes:
    """Return a masked frame as a JPEG."""
    buffer = io.BytesIO()
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
