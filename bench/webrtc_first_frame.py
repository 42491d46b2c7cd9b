"""Benchmark: first frame over WebRTC (WHEP) vs HLS, a Ring-like doorbell, and WebRTC revocation.

Claims checked:
- from the WHEP 201 to the first decoded frame takes at most 0.5 s plus the
  source's keyframe interval (median), against the HLS figure of the same
  source measured in the same run;
- for a Ring-like doorbell, from the grant's webhook 201 to the first
  decoded frame takes at most 0.7 s (median), for a city client that does
  not trickle and for one that does, against the same figure of the
  go2rtc-like provider in the same run;
- revoking a share closes every WebRTC session and its URLs answer 404
  within 1 s (p99).

How: starts a real Home Assistant (`bench/harness.py`, port 18433 by
default) with `camera.bench_feed`, whose source is the demo clip as a
real-time H.264 MPEG-TS served on loopback by a separate process (15 fps,
keyframe every second), and the bench-only `rtcc_bench` WebRTC provider,
which relays that feed's H.264 packets over WebRTC with aiortc,
untranscoded, as go2rtc does for a camera; and `camera.bench_ring`, a
doorbell with no stream source that relays the same feed over WebRTC but
signals like Home Assistant's Ring camera (`rtcc_bench/webrtc.py`: the
answer after its handler returned, then its candidates one by one, 50 ms
apart, and never an end of candidates). Ring's own servers' latency is not
in it. For each run:

Every share is a real grant: a signed `activation.requested` through the
webhook, with `accept_streams` `["hls"]` for the HLS figure and `["webrtc"]`
for the others (the resident's "Live views the city may get" option, set
through the options flow, allows both), ended by a signed
`activation.ended`.

- HLS: from the grant's 201, the LL-HLS fast path on its `stream_url`
  (blocking playlist for part 0, init.mp4, part 0, decode) runs, as in
  bench/time_to_first_frame.py;
- Chromium (if Debian's `chromium` is installed): headless, on the viewer
  page tools/city/whep_viewer.html from another origin, its own
  RTCPeerConnection trickling its candidates, on the grant's `webrtc_url`;
  the time from the WHEP 201 to the first decoded frame (getStats
  `framesDecoded`, polled every 10 ms);
- WebRTC: an aiortc viewer POSTs a receive-only offer to the grant's
  `webrtc_url` and decodes; the time from the WHEP 201 to the first decoded
  frame is recorded;
- Ring-like: for the Ring-like doorbell and, as the baseline, the
  go2rtc-like provider, the time from the grant's webhook 201 to the first
  frame an aiortc viewer decodes (offer, WHEP POST, answer, ICE, DTLS,
  keyframe); for the Ring-like doorbell both with a viewer that puts its
  candidates in the offer and with one that trickles them (PATCH);
- revoke: four viewer sessions of one grant are opened and decoding, the
  city sends `activation.ended`, and the time until every session URL
  answers 404 and until every viewer's track has ended is recorded.

The keyframe interval (the baseline) is measured in the same run by reading
the feed with PyAV. The feed starts every new connection with a keyframe; a
real camera joined mid-GOP adds up to one keyframe interval (the target
allows for that). Run from the repository root (about 3 min):

    .venv/bin/python bench/webrtc_first_frame.py [--runs 5] [--port 18433]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import asyncio
import json
from pathlib import Path
import sys
import time
from typing import Any
from unittest.mock import patch

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aioice.ice
from harness import (
    FEED_CAMERA,
    FEED_CAMERA_NAME,
    RING_CAMERA,
    RING_CAMERA_NAME,
    Bench,
    Share,
    activate,
    bench_main,
    end,
    feed_url,
)
from report import median, note, out, percentile, verdict
from time_to_first_frame import first_part, keyframe_interval

from tools.city.chromium import chromium, viewer_page
from tools.city.webrtc import SDPFRAG_TYPE, Viewer

SESSIONS = 4
FRAME_TIMEOUT_S = 30
# A Ring doorbell's first frame, from the grant's webhook 201.
RING_TARGET_S = 0.7


async def _webrtc_first_frame(bench: Bench, url: str) -> float:
    viewer = Viewer(bench.session, url)
    try:
        await viewer.start()
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await viewer.first_frame.wait()
        assert viewer.time_to_first_frame is not None
        return viewer.time_to_first_frame
    finally:
        await viewer.close()


async def _chromium_first_frame(page: Any, url: str) -> float:
    result = await page.js(f"watch({json.dumps(url)})")
    if result["status"] != 201 or result["firstFrameMs"] is None:
        raise RuntimeError(f"Chromium got no frame: {result['status']}")
    return float(result["firstFrameMs"]) / 1000


async def _gone(session: aiohttp.ClientSession, url: str, t0: float) -> float:
    """Poll a session URL (harmless PATCH) until it answers 404."""
    while True:
        async with session.patch(
            url, data=b"a=end-of-candidates\r\n", headers={"Content-Type": SDPFRAG_TYPE}
        ) as response:
            if response.status == 404:
                return time.monotonic() - t0
        await asyncio.sleep(0.005)


async def _ended(viewer: Viewer, t0: float) -> float:
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        await viewer.ended.wait()
    return time.monotonic() - t0


async def _grant(bench: Bench, share: Share, activation: str, kind: str) -> str:
    """Have the city ask for one kind of live view; return its URL."""
    status, reply, _ = await activate(
        bench.session, share, activation, accept_streams=[kind]
    )
    if status != 201:
        raise RuntimeError(f"activation answered {status} {reply}")
    return str(reply["webrtc_url" if kind == "webrtc" else "stream_url"])


async def _end(bench: Bench, share: Share, activation: str) -> None:
    """Have the city end the activation; empty the history for the next."""
    status, reply, _ = await end(bench.session, share, activation)
    if status != 200:
        raise RuntimeError(f"activation.ended answered {status} {reply}")
    await bench.api.reset_history(share)


async def _from_grant(
    bench: Bench, share: Share, activation: str, *, trickle: bool = False
) -> tuple[float, float]:
    """Grant WebRTC and watch; return the webhook 201 -> (decoded frame, WHEP 201)."""
    status, reply, _ = await activate(
        bench.session, share, activation, accept_streams=["webrtc"]
    )
    granted = time.monotonic()
    if status != 201:
        raise RuntimeError(f"activation answered {status} {reply}")
    viewer = Viewer(bench.session, str(reply["webrtc_url"]), trickle=trickle)
    try:
        await viewer.start()
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await viewer.first_frame.wait()
        assert viewer.first_frame_at is not None
        assert viewer.answered_at is not None
        return viewer.first_frame_at - granted, viewer.answered_at - granted
    finally:
        await viewer.close()
        await _end(bench, share, activation)


async def _revoke(bench: Bench, share: Share, activation: str) -> tuple[float, float]:
    """Open four decoding sessions, end; return (all 404, all media ended)."""
    url = await _grant(bench, share, activation, "webrtc")
    viewers = [Viewer(bench.session, url) for _ in range(SESSIONS)]
    try:
        for viewer in viewers:
            await viewer.start()
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await asyncio.gather(*(v.first_frame.wait() for v in viewers))
        t0 = time.monotonic()
        gone = asyncio.gather(
            *(_gone(bench.session, v.location or "", t0) for v in viewers)
        )
        ended = asyncio.gather(*(_ended(v, t0) for v in viewers))
        await _end(bench, share, activation)
        return max(await gone), max(await ended)
    finally:
        for viewer in viewers:
            await viewer.close(delete=False)


async def measure(bench: Bench, runs: int, page: Any) -> None:
    """Grant, watch, end; print the summary lines."""
    share = await bench.api.add_share(
        FEED_CAMERA, max_activations_per_day=24, stream_kinds=["hls", "webrtc"]
    )
    await bench.api.set_consent(share, True)
    ring = await bench.api.add_share(
        RING_CAMERA, max_activations_per_day=24, stream_kinds=["webrtc"]
    )
    await bench.api.set_consent(ring, True)
    loop = asyncio.get_running_loop()
    interval = await loop.run_in_executor(
        None, keyframe_interval, feed_url(bench.hass.port)
    )
    hls: list[float] = []
    webrtc: list[float] = []
    browser: list[float] = []
    gone: list[float] = []
    ended: list[float] = []
    # Webhook 201 -> (first frame, WHEP 201), per viewer.
    grants: dict[str, list[tuple[float, float]]] = {
        "go2rtc-like": [],
        "Ring-like, not trickling": [],
        "Ring-like, trickling": [],
    }
    for index in range(runs):
        activation = f"WEBRTC-{index:02d}"
        url = await _grant(bench, share, f"{activation}-HLS", "hls")
        run: dict[str, float] = {}
        async with asyncio.timeout(60):
            await first_part(bench.session, url, time.monotonic(), run)
        hls.append(run["frame decoded"])
        note(f"run {index + 1}: LL-HLS first frame {hls[-1]:.2f} s")
        await _end(bench, share, f"{activation}-HLS")

        if page is not None:
            url = await _grant(bench, share, f"{activation}-CHROMIUM", "webrtc")
            browser.append(await _chromium_first_frame(page, url))
            await _end(bench, share, f"{activation}-CHROMIUM")
            note(f"run {index + 1}: Chromium first frame {browser[-1]:.2f} s")

        url = await _grant(bench, share, f"{activation}-AIORTC", "webrtc")
        webrtc.append(await _webrtc_first_frame(bench, url))
        note(f"run {index + 1}: WebRTC first frame {webrtc[-1]:.2f} s")
        await _end(bench, share, f"{activation}-AIORTC")

        for name, target, trickle in (
            ("go2rtc-like", share, False),
            ("Ring-like, not trickling", ring, False),
            ("Ring-like, trickling", ring, True),
        ):
            suffix = name.upper().replace(", ", "-").replace(" ", "-")
            grants[name].append(
                await _from_grant(
                    bench, target, f"{activation}-{suffix}", trickle=trickle
                )
            )
            frame, answer = grants[name][-1]
            note(
                f"run {index + 1}: {name}: first frame {frame:.2f} s, WHEP 201 "
                f"{answer:.2f} s after the webhook 201"
            )

        all_gone, all_ended = await _revoke(bench, share, f"{activation}-REVOKE")
        gone.append(all_gone)
        ended.append(all_ended)
        note(
            f"run {index + 1}: revoke: all {SESSIONS} URLs 404 after "
            f"{all_gone * 1000:.0f} ms, all media ended after {all_ended * 1000:.0f} ms"
        )

    value, baseline = median(webrtc), median(hls)
    target = 0.5 + interval
    out(
        f"time to first frame over WebRTC (granted webrtc_url, WHEP 201 -> decoded "
        f"frame, aiortc), "
        f"median of {runs}: {value:.2f} s vs LL-HLS first part of the same source "
        f"{baseline:.2f} s = ratio {value / baseline:.2f} (target <= {target:.2f} s "
        f"= 0.5 s + keyframe interval {interval:.2f} s) {verdict(value <= target)}"
    )
    if browser:
        value = median(browser)
        out(
            f"time to first frame over WebRTC (granted webrtc_url, WHEP 201 -> "
            f"decoded frame, headless Chromium, trickling), median of {runs}: {value:.2f} s vs LL-HLS "
            f"{baseline:.2f} s = ratio {value / baseline:.2f} (target <= "
            f"{target:.2f} s) {verdict(value <= target)}"
        )
    else:
        note("Chromium not installed: no browser figure")
    baseline = median([frame for frame, _ in grants["go2rtc-like"]])
    for name, client in (
        ("Ring-like, not trickling", "aiortc, candidates in the offer"),
        ("Ring-like, trickling", "aiortc, trickling"),
    ):
        value = median([frame for frame, _ in grants[name]])
        out(
            f"time to first frame of a Ring-like doorbell over WebRTC (webhook 201"
            f" -> decoded frame, {client}), median of {runs}: {value:.2f} s vs "
            f"go2rtc-like provider {baseline:.2f} s = ratio {value / baseline:.2f} "
            f"(target <= {RING_TARGET_S:.2f} s) {verdict(value <= RING_TARGET_S)}"
        )
    out(
        "  WHEP 201 after the webhook 201, median: "
        + ", ".join(
            f"{name} {median([answer for _, answer in values]):.2f} s"
            for name, values in grants.items()
        )
    )
    p99_gone, p99_ended = percentile(gone, 99), percentile(ended, 99)
    out(
        f"activation.ended with {SESSIONS} WebRTC sessions, p99 of {runs}: every "
        f"session URL "
        f"404 after {p99_gone * 1000:.0f} ms, every viewer's media ended after "
        f"{p99_ended * 1000:.0f} ms (target <= 1000 ms) "
        f"{verdict(max(p99_gone, p99_ended) <= 1)}"
    )


async def _measure(bench: Bench, runs: int) -> None:
    # The viewer's ICE on loopback too, like the provider's.
    with patch.object(aioice.ice, "get_host_addresses", return_value=["127.0.0.1"]):
        if chromium() is None:
            await measure(bench, runs, None)
            return
        async with viewer_page() as page:
            await measure(bench, runs, page)


if __name__ == "__main__":
    bench_main(
        __doc__,
        18433,
        lambda bench, args: _measure(bench, args.runs),
        options={"--runs": {"type": int, "default": 5}},
        feed_cameras=(FEED_CAMERA_NAME,),
        ring_like_cameras=(RING_CAMERA_NAME,),
    )
