"""Command line of the reference city client (`python -m tools.city`)."""

import argparse
from collections.abc import Sequence
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Final
import webbrowser

import httpx

from . import client, watch as watch_page

KEY_ENV: Final = "RTCC_CITY_KEY"

DESCRIPTION: Final = """\
Reference client for the rtcc_share City activation API (docs/city-api.md):
generate keys, and send signed activation.requested / activation.ended
messages to a home's webhook URL the way a city's RTCC would."""

KEY_HELP: Final = (
    f"signing key: the whsec_ shared secret (v1) or the city's whsk_ private key "
    f"(v1a). Default: ${KEY_ENV}, which keeps the key out of the process list "
    "and shell history. Never printed."
)


def _write(text: str = "", *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")


def _finite(text: str) -> float:
    """Parse a finite number (JSON has no NaN or Infinity)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _add_common(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--url",
        required=required,
        help="the home's webhook URL, https://<home>/api/webhook/<webhook_id>",
    )
    parser.add_argument("--key", default=os.environ.get(KEY_ENV), help=KEY_HELP)
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the home's TLS certificate (self-signed lab setups only)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=client.DEFAULT_TIMEOUT_S,
        help="seconds to wait for the answer (default: %(default)s)",
    )


def _add_activation(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Add the arguments of an activation.requested."""
    parser.add_argument(
        "--activation-id",
        help="the city's id for this activation, 1-128 of [A-Za-z0-9._:-] "
        "(default: a new RTCC-<UTC date>-<random hex>); send the same id again "
        "to retry",
    )
    parser.add_argument(
        "--incident-id", help="the incident's id (default: the activation id)"
    )
    parser.add_argument(
        "--incident-type",
        default="shots_fired",
        help="snake_case incident code (default: %(default)s)",
    )
    parser.add_argument(
        "--lat", type=_finite, required=required, help="incident latitude"
    )
    parser.add_argument(
        "--lon", type=_finite, required=required, help="incident longitude"
    )
    parser.add_argument(
        "--radius",
        type=_finite,
        default=300,
        help="incident radius in metres (default: %(default)s)",
    )
    parser.add_argument("--description", help="incident description")
    parser.add_argument(
        "--operator-id", default="op-1", help="operator id (default: %(default)s)"
    )
    parser.add_argument("--operator-name", help="operator name")
    parser.add_argument(
        "--legal-basis",
        default="exigent_circumstances",
        help="legal basis (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=600,
        help="requested duration in seconds, 30-86400; the home may grant less "
        "(default: %(default)s)",
    )


def _stream_kinds(text: str) -> list[str]:
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    if not kinds or not set(kinds) <= {"hls", "webrtc"}:
        raise argparse.ArgumentTypeError("a comma-separated list of hls and webrtc")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of all subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.city",
        description=DESCRIPTION,
        epilog="Exit status: 0 when the home answered 2xx with its JSON, "
        "1 for any other answer or no answer, 2 for usage errors.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = commands.add_parser(
        "keygen",
        help="print a new Ed25519 key pair (v1a) or a shared secret (v1)",
        description="Print a new Ed25519 key pair: keep the whsk_ private key, "
        "give the whpk_ public key to the resident. With --secret, print a new "
        "whsec_ shared secret (32 random bytes) instead.",
    )
    keygen.add_argument(
        "--secret",
        action="store_true",
        help="print a whsec_ shared secret instead of a key pair",
    )

    activate = commands.add_parser(
        "activate",
        help="send a signed activation.requested",
        description="Ask the home for a live share of its camera for an incident "
        "near it. Prints the status and the JSON answer; a grant holds the "
        "stream_url.",
    )
    _add_common(activate)
    _add_activation(activate, required=True)
    activate.add_argument(
        "--play",
        action="store_true",
        help="on a grant, probe the stream_url with ffprobe (if installed)",
    )
    activate.add_argument(
        "--accept-streams",
        type=_stream_kinds,
        metavar="KINDS",
        help="the live views this city can play, comma-separated: hls, webrtc "
        '(sends accept_streams; default: none sent, which the home reads as "hls")',
    )

    watch = commands.add_parser(
        "watch",
        help="activate (or take a stream_url) and play it in the local viewer page",
        description="Send a signed activation.requested like `activate` and play "
        "the granted stream_url in a local viewer page (hls.js, served from this "
        "machine on 127.0.0.1; nothing loads from the internet), opened in your "
        "browser. With --webrtc, ask for WebRTC and play the webrtc_url over "
        "WHEP with the browser's own RTCPeerConnection. With --stream-url or "
        "--webrtc-url, play an existing grant instead.",
    )
    _add_common(watch, required=False)
    _add_activation(watch, required=False)
    given = watch.add_mutually_exclusive_group()
    given.add_argument("--stream-url", help="play this stream_url; sends no activation")
    given.add_argument(
        "--webrtc-url", help="play this webrtc_url (WHEP); sends no activation"
    )
    given.add_argument(
        "--webrtc",
        action="store_true",
        help='ask for accept_streams ["webrtc"] and play the webrtc_url',
    )
    watch.add_argument(
        "--port",
        type=int,
        default=watch_page.DEFAULT_PORT,
        help="the viewer page's port on 127.0.0.1 (default: %(default)s)",
    )
    watch.add_argument(
        "--no-browser",
        action="store_true",
        help="only print the viewer page's address",
    )
    watch.add_argument(
        "--serve-for",
        type=_finite,
        help="stop serving the page after this many seconds (default: Ctrl-C)",
    )

    end = commands.add_parser(
        "end",
        help="send a signed activation.ended",
        description="End a live share early.",
    )
    _add_common(end)
    end.add_argument("--activation-id", required=True, help="the activation to end")
    end.add_argument(
        "--operator-id", default="op-1", help="operator id (default: %(default)s)"
    )

    probe = commands.add_parser(
        "probe-webrtc",
        help="receive a webrtc_url's video for N seconds (WHEP, aiortc)",
        description="Open a WebRTC viewer session on a grant's webrtc_url, "
        "decode the video it receives for --seconds, end the session (DELETE) "
        "and report the time from the 201 to the first decoded frame and the "
        "frame count. Needs no key: the URL's token is the credential.",
    )
    probe.add_argument("--url", required=True, help="the grant's webrtc_url")
    probe.add_argument(
        "--seconds",
        type=_finite,
        default=5,
        help="how long to receive (default: %(default)s)",
    )
    probe.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the home's TLS certificate (self-signed lab setups only)",
    )
    return parser


def _probe_webrtc(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - aiortc only for this command

    import aiohttp  # noqa: PLC0415

    from . import webrtc  # noqa: PLC0415

    async def run() -> webrtc.Viewer:
        connector = aiohttp.TCPConnector(ssl=False) if args.insecure else None
        async with aiohttp.ClientSession(connector=connector) as http:
            return await webrtc.probe(http, args.url, max(args.seconds, 0))

    try:
        viewer = asyncio.run(run())
    except webrtc.WhepRefusedError as err:
        _write(f"refused: HTTP {err.status} {err.body}", err=True)
        return 1
    except (aiohttp.ClientError, OSError, ValueError) as err:
        _write(f"no WebRTC session: {type(err).__name__}: {err}", err=True)
        return 1
    first = viewer.time_to_first_frame
    if first is None:
        _write(f"no video frame in {args.seconds:g} s")
        return 1
    width, height = viewer.size or (0, 0)
    _write(
        f"first frame {first:.3f} s after the 201; {viewer.frames} frames "
        f"({width}x{height}) in {args.seconds:g} s"
    )
    return 0


def _keygen(args: argparse.Namespace) -> int:
    if args.secret:
        _write(
            "shared secret (give to the resident confidentially, keep a copy "
            f"secret): {client.generate_secret()}"
        )
        return 0
    private_key, public_key = client.generate_keypair()
    _write(f"city private key (keep secret): {private_key}")
    _write(f"public key (give to the resident): {public_key}")
    return 0


def _play(stream_url: str, insecure: bool) -> None:
    """Show the stream's tracks, and how to watch it."""
    command = client.probe_command(stream_url, insecure=insecure)
    if command is None:
        _write("ffprobe is not installed (not on PATH): cannot probe the stream")
    else:
        _write("ffprobe:")
        try:
            result = client.probe(command)
        except subprocess.TimeoutExpired:
            _write("ffprobe: no answer in time", err=True)
        else:
            if result.stdout:
                _write(result.stdout.rstrip())
            if result.returncode:
                _write(
                    f"ffprobe failed (exit {result.returncode}): "
                    f"{result.stderr.strip()}",
                    err=True,
                )
    if shutil.which("ffplay"):
        _write(f"watch it with: ffplay {stream_url}")
    else:
        _write("ffplay is not installed (not on PATH)")


def _send(
    args: argparse.Namespace, message: dict[str, Any]
) -> client.CityResponse | None:
    body = client.encode(message)
    headers = client.sign(args.key, body)
    try:
        return client.post(
            args.url, body, headers, insecure=args.insecure, timeout=args.timeout
        )
    except httpx.HTTPError as err:
        _write(f"no answer from {args.url}: {type(err).__name__}: {err}", err=True)
        return None


def _report(response: client.CityResponse) -> None:
    _write(f"HTTP {response.status} {response.reason}")
    if response.body is not None:
        _write(json.dumps(response.body, indent=2, ensure_ascii=False))
    elif response.text:
        _write(response.text)
    else:
        _write("(empty body: not the integration's answer; is the webhook URL right?)")


def _watch(args: argparse.Namespace, stream_url: str, player: str = "hls") -> int:
    """Serve the viewer page playing this URL; open it in the browser."""
    try:
        server = watch_page.ViewerServer(args.port)
    except watch_page.ViewerMissingError as err:
        _write(str(err), err=True)
        return 1
    except OSError as err:
        _write(f"cannot serve the viewer page on port {args.port}: {err}", err=True)
        return 1
    with server:
        page = server.page_url(stream_url, player)
        _write(f"viewer page: {page}")
        if not args.no_browser:
            webbrowser.open(page)
        try:
            if args.serve_for is None:
                _write("serving the page; Ctrl-C to stop")
                threading.Event().wait()
            else:
                time.sleep(max(args.serve_for, 0))
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "keygen":
        return _keygen(args)
    if args.command == "probe-webrtc":
        return _probe_webrtc(args)
    if args.command == "watch" and args.stream_url:
        return _watch(args, args.stream_url)
    if args.command == "watch" and args.webrtc_url:
        return _watch(args, args.webrtc_url, "webrtc")
    if args.command == "watch" and (
        args.url is None or args.lat is None or args.lon is None
    ):
        parser.error(
            "watch needs --stream-url or --webrtc-url, or --url, --lat and --lon"
        )

    if not args.key:
        parser.error(f"--key is required (or set {KEY_ENV})")
    try:
        client.parse_signing_key(args.key)
    except client.KeyFormatError as err:
        parser.error(f"--key: {err}")

    # Always addressed: a captured message is then valid at this home only.
    recipient = client.recipient_of(args.url)
    if args.command in {"activate", "watch"}:
        activation_id = args.activation_id or client.new_activation_id()
        message = client.build_requested(
            activation_id=activation_id,
            incident_id=args.incident_id or activation_id,
            incident_type=args.incident_type,
            lat=args.lat,
            lon=args.lon,
            radius_m=args.radius,
            description=args.description,
            operator_id=args.operator_id,
            operator_name=args.operator_name,
            legal_basis=args.legal_basis,
            duration_s=args.duration,
            recipient=recipient,
            accept_streams=(
                ["webrtc"]
                if args.command == "watch" and args.webrtc
                else getattr(args, "accept_streams", None)
            ),
        )
    else:
        message = client.build_ended(
            activation_id=args.activation_id,
            operator_id=args.operator_id,
            recipient=recipient,
        )

    if (response := _send(args, message)) is None:
        return 1
    _report(response)
    body = response.body if response.ok else None
    stream_url = body.get("stream_url") if isinstance(body, dict) else None
    if args.command == "watch":
        field, player = (
            ("webrtc_url", "webrtc") if args.webrtc else ("stream_url", "hls")
        )
        url = body.get(field) if isinstance(body, dict) else None
        if not isinstance(url, str):
            _write(f"no {field} in the answer: nothing to watch")
            return 1
        return _watch(args, url, player)
    if args.command == "activate" and args.play:
        if isinstance(stream_url, str):
            _play(stream_url, args.insecure)
        else:
            _write("no stream_url in the answer: nothing to play")
    return 0 if response.ok else 1
