"""The demo doorbell's clip: colour bars and a clock, H.264, made with PyAV.

Imports nothing from Home Assistant, so scripts/setup can run it as a script
to encode the clip before the first start:
`python config/custom_components/demo_doorbell/clip.py config/demo_doorbell.mp4`.
"""

from collections.abc import Iterator
from fractions import Fraction
import logging
from pathlib import Path
import sys
import threading

import av
import numpy as np
from PIL import Image, ImageDraw

FPS = 15
SECONDS = 30
WIDTH, HEIGHT = 640, 360

_LOGGER = logging.getLogger(__name__)


class Stopped(Exception):
    """Encoding was abandoned because Home Assistant is stopping."""


def draw(index: int) -> Image.Image:
    """One frame: moving colour bars, the clip clock, a caption."""
    x = np.arange(WIDTH)
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    phase = (x + index * 6) % WIDTH
    pixels[:, :, 0] = (phase * 255 // WIDTH).astype(np.uint8)
    pixels[:, :, 1] = ((WIDTH - phase) * 255 // WIDTH).astype(np.uint8)
    pixels[:, :, 2] = 96
    image = Image.fromarray(pixels, "RGB")
    canvas = ImageDraw.Draw(image)
    seconds = index / FPS
    canvas.rectangle((20, 20, 620, 120), fill=(0, 0, 0))
    canvas.text((36, 28), "RTCC demo doorbell", fill=(255, 255, 255), font_size=28)
    canvas.text(
        (36, 64),
        f"clip time {int(seconds // 60):02d}:{seconds % 60:04.1f}",
        fill=(255, 220, 0),
        font_size=40,
    )
    return image


def generate_clip(path: Path, stop: threading.Event | None = None) -> Path:
    """Encode the clip once: H.264, a keyframe every second, no audio.

    Written to a partial file and renamed at the end, so an interrupted run
    never leaves a truncated clip behind. Raises Stopped when stop is set.
    """
    if path.exists():
        return path
    _LOGGER.info("Encoding %s (%d s of video, once)", path.name, SECONDS)
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = FPS
        stream.codec_context.options = {
            "bf": "0",
            "sc_threshold": "0",
            "preset": "veryfast",
        }
        for index in range(SECONDS * FPS):
            if stop is not None and stop.is_set():
                raise Stopped
            frame = av.VideoFrame.from_image(draw(index))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    partial.replace(path)
    return path


def packets(clip: Path, stop: threading.Event) -> Iterator[tuple[av.Packet, float]]:
    """The clip's packets forever, timestamps continued across loops."""
    offset = 0
    while not stop.is_set():
        with av.open(str(clip)) as source:
            video = source.streams.video[0]
            base = video.time_base or Fraction(1, 90000)
            end = offset
            for packet in source.demux(video):
                if stop.is_set():  # the viewer left: stop now, not after the pass
                    return
                if packet.pts is None:
                    continue
                packet.pts += offset
                packet.dts = (packet.dts or 0) + offset
                end = max(end, packet.pts + (packet.duration or 0))
                yield packet, float(packet.pts * base)
            offset = end


if __name__ == "__main__":
    generate_clip(Path(sys.argv[1]))
