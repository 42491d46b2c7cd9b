"""Benchmark: a signed activation is answered about as fast as a bare webhook.

Claim checked: the median and p95 time from sending a signed
`activation.requested` to receiving its 201 are at most 1.5x those of a bare
webhook handler (reads the body, answers `{}`) registered in the same Home
Assistant and reached the same way.

How: starts a real Home Assistant (`bench/harness.py`: scratch config under
/tmp, port 18123 by default, the bench-only `rtcc_bench` integration for the
bare webhook and the history reset) with two source cameras, and adds
rtcc_share for each through the real config and options flows (lab mode, 24
activations a day), consent on:

- `camera.bench_file`: a local H.264 MP4 (tests/video.py), the cheapest
  source to open: the integration's own cost;
- `camera.bench_feed`: the demo doorbell's clip as a live, real-time
  MPEG-TS feed over loopback HTTP, served by a separate process
  (`harness.FeedProcess`, port + 1; the demo doorbell's own feed keeps a
  thread running for up to 30 s after each client leaves, which would pile
  up over hundreds of grants). For any source that is not RTSP,
  the HLS share (live/hls_share.py) probes the source for an audio track before granting (PyAV
  opens it), so this shows what that costs with a live HTTP source. RTSP
  sources skip the probe.

With one aiohttp client over loopback it then takes rounds of samples, in an
order that alternates every round so drift hits all alike:

- baseline: POST to the bare webhook (same body size and headers);
- subject: POST a signed `activation.requested` -> 201 (size, media type,
  signature, replay store, payload rules, policy, audit record flushed with
  fsync, history saved, audio probe, the share's own stream started), on the
  file camera every round and on the live feed every 5th round;
- detail only: a signed request for an incident outside the area -> 403
  (the path without the grant: signature, rules, policy, the refusal's
  audit record).

After each grant the share is ended (signed `activation.ended`) and the
entry's share history emptied through `rtcc_bench`, which resets the
resident's rolling daily budget: for measurement only. 5 warm-up rounds are
dropped. Finally the HLS share's audio probe is timed on its own against the
live feed.

Run from the repository root (about 2 min on a 2-core machine):

    .venv/bin/python bench/activation_latency.py [--samples 200] [--port 18123]

Prints one summary line per figure; exits 0 whether or not a target is met.
"""

# ruff: noqa: INP001
import asyncio
import json
import time
from typing import Any

from harness import (
    FEED_CAMERA,
    FEED_CAMERA_NAME,
    FILE_CAMERA,
    Bench,
    Share,
    activate,
    bench_main,
    end,
    feed_url,
    requested,
)
from report import median, note, out, percentile, verdict

TARGET = 1.5
WARMUP = 5
LIVE_EVERY = 5
PROBE_SAMPLES = 20
TIME_BUDGET_S = 140
FAR_AWAY = {"lat": 33.5, "lon": -90.18481}  # about 134 km north of home


def _probe_source(url: str) -> float:
    """Time the HLS share's audio probe: PyAV opens the source, lists streams."""
    import av  # noqa: PLC0415

    began = time.perf_counter()
    with av.open(
        url, options={"probesize": "32", "analyzeduration": "0"}, timeout=10
    ) as container:
        _ = [stream.codec_context.name for stream in container.streams.audio]
    return time.perf_counter() - began


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "median_ms": round(median(values) * 1000, 2),
        "p95_ms": round(percentile(values, 95) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


async def measure(bench: Bench, samples: int) -> None:
    """Take the samples, print the summary lines."""
    live_url = feed_url(bench.hass.port)
    api, session = bench.api, bench.session
    shares = {
        "file": await api.add_share(FILE_CAMERA, max_activations_per_day=24),
        "live": await api.add_share(FEED_CAMERA, max_activations_per_day=24),
    }
    for share in shares.values():
        await api.set_consent(share, True)
    bare_url = bench.bench_webhook_url
    assert bare_url is not None
    times: dict[str, list[float]] = {
        "bare": [],
        "refused": [],
        "grant_file": [],
        "grant_live": [],
        "ended_file": [],
        "ended_live": [],
    }
    deadline = time.monotonic() + TIME_BUDGET_S

    async def bare(index: int) -> float:
        body, headers = shares["file"].city.sign(requested(f"BARE-{index:04d}"))
        began = time.perf_counter()
        async with session.post(bare_url, data=body, headers=headers) as response:
            await response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise RuntimeError(f"bare webhook answered {response.status}")
        return elapsed

    async def refused(index: int) -> float:
        share = shares["file"]
        payload = requested(f"FAR-{index:04d}")
        payload["incident"]["location"] = FAR_AWAY
        body, headers = share.city.sign(payload)
        began = time.perf_counter()
        async with session.post(
            share.webhook_url, data=body, headers=headers
        ) as response:
            raw = await response.read()
        elapsed = time.perf_counter() - began
        if response.status != 403:
            raise RuntimeError(f"far request answered {response.status} {raw!r}")
        return elapsed

    async def grant_and_end(share: Share, index: int) -> tuple[float, float]:
        activation = f"LAT-{index:04d}"
        status, reply, granted = await activate(session, share, activation)
        if status != 201:
            raise RuntimeError(f"activation answered {status} {reply}")
        status, reply, ended = await end(session, share, activation)
        if status != 200:
            raise RuntimeError(f"activation.ended answered {status} {reply}")
        await api.reset_history(share)
        return granted, ended

    async def sample(kind: str, index: int) -> None:
        if kind in ("bare", "refused"):
            values = [await (bare if kind == "bare" else refused)(index)]
            names = [kind]
        else:
            source = kind.removeprefix("grant_")
            values = list(await grant_and_end(shares[source], index))
            names = [kind, f"ended_{source}"]
        if index >= WARMUP:
            for name, value in zip(names, values, strict=True):
                times[name].append(value)

    rounds = 0
    for index in range(WARMUP + samples):
        if time.monotonic() > deadline:
            note(f"time budget spent after {rounds} rounds")
            break
        kinds = ["bare", "refused", "grant_file"]
        if index % LIVE_EVERY == 0:
            kinds.append("grant_live")
        # Rotate, so each kind takes each position in turn. The refusal needs
        # no live share (else 409 already_active): every grant is ended first.
        shift = index % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            await sample(kind, index)
        rounds = index + 1 - WARMUP
        if rounds > 0 and rounds % 50 == 0:
            note(f"{rounds} rounds")

    loop = asyncio.get_running_loop()
    probes = [
        await loop.run_in_executor(None, _probe_source, live_url)
        for _ in range(PROBE_SAMPLES)
    ]

    for source, label in (
        ("file", "local file source"),
        ("live", "live HTTP MPEG-TS source (demo clip)"),
    ):
        values = times[f"grant_{source}"]
        for stat_name, stat in (
            ("median", median),
            ("p95", lambda v: percentile(v, 95)),
        ):
            subject = stat(values) * 1000
            baseline = stat(times["bare"]) * 1000
            ratio = subject / baseline
            out(
                f"activation latency {stat_name}, {label} (signed "
                f"activation.requested -> 201, n={len(values)}): {subject:.1f} ms "
                f"vs bare webhook {baseline:.2f} ms = ratio {ratio:.1f} "
                f"(target <= {TARGET}) {verdict(ratio <= TARGET)}"
            )
    refused_ms = median(times["refused"]) * 1000
    out(
        f"  where the time goes (medians): bare webhook "
        f"{median(times['bare']) * 1000:.2f} ms; authenticated refusal "
        f"(signature, rules, policy, audit record + fsync) {refused_ms:.1f} ms; "
        f"grant from a file source {median(times['grant_file']) * 1000:.1f} ms; "
        f"audio probe of the live feed alone (PyAV open, before every "
        f"non-RTSP grant) {median(probes) * 1000:.1f} ms"
    )
    details = {
        kind: _stats(values)
        for kind, values in (*times.items(), ("audio_probe_live", probes))
    }
    out(f"  details: {json.dumps(details)}")


if __name__ == "__main__":
    bench_main(
        __doc__,
        18123,
        lambda bench, args: measure(bench, args.samples),
        options={"--samples": {"type": int, "default": 200}},
        feed_cameras=(FEED_CAMERA_NAME,),
        file_camera=True,
    )
