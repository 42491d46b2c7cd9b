"""Real H.264 test video, generated with PyAV."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 10
KEYFRAME_INTERVAL_S = 1


def make_video(path: Path, seconds: int = 8, audio: bool = False) -> Path:
    """Write an MP4 of moving colour bars; keyframe every second, optional AAC."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        video.codec_context.gop_size = FPS * KEYFRAME_INTERVAL_S
        video.codec_context.options = {"bf": "0", "sc_threshold": "0"}
        sound = container.add_stream("aac", rate=16000) if audio else None
        for index in range(seconds * FPS):
            pixels = np.zeros((96, 160, 3), dtype=np.uint8)
            pixels[:, :, 0] = (np.arange(160) + index * 4) % 256
            pixels[:, :, 1] = index * 3 % 256
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            samples = 1024
            for index in range(seconds * 16000 // samples):
                tone = np.sin(np.arange(samples) / 8).astype(np.float32).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                frame.sample_rate = 16000
                frame.pts = index * samples
                frame.time_base = Fraction(1, 16000)
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return path
