"""SDP of the WHEP endpoint: checking offers, what the camera sees, the answer the city gets.

An offer is taken only if it is strictly well-formed (contract 1.2): the
camera's stack (libwebrtc, pion, aiortc) must read exactly the receive-only
m-sections checked here, so any text a parser could read otherwise (another
line break, another separator, a second direction) is refused, not
interpreted.

The SDP is rewritten only where the contract requires it: audio m-lines are
cut out of what the camera sees unless the resident shares audio (and come
back rejected, port 0, in the answer), `sendrecv` answers become `sendonly`,
and candidates the camera trickles after its answer are gathered into it, so
that a client which does not trickle (ffmpeg, OBS) can connect. Outside lab
mode no address that is not public crosses the home's boundary: the city's
candidates reach the camera only for public addresses, and the answer names
none of the home's private ones.

Pure: no Home Assistant import, and no HTTP status; the endpoint decides what
an `SdpError` means for the request at hand (a bad offer, or a camera that
answered badly).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
import ipaddress
import re
from typing import Final

from webrtc_models import RTCIceCandidateInit

END_OF_CANDIDATES: Final = "a=end-of-candidates"
MAX_MEDIA: Final = 16
# The city's candidates the camera is given per viewer session, offer and
# trickle together; browsers gather a handful.
MAX_CITY_CANDIDATES: Final = 32
_RECEIVE_ONLY: Final = frozenset({"a=recvonly", "a=inactive"})
# Read as a direction by some stack: libwebrtc takes `a=sendrecv:1` and
# `a=sendrecv x` for `a=sendrecv`; any case, spaced, or followed by anything.
_DIRECTION: Final = re.compile(
    r"a=\s*(?:sendrecv|sendonly|recvonly|inactive)", re.IGNORECASE
)
# Every control and line-breaking character (C0 but LF, DEL, C1, U+2028,
# U+2029), looked for once CRLF became LF.
_FORBIDDEN: Final = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# A non-empty line that does not start with a type letter and `=`.
_UNTYPED: Final = re.compile("^(?![a-z]=).", re.MULTILINE)
_TOKEN: Final = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_M_LINE: Final = re.compile(
    rf"m=(?:video|audio|application) [0-9]{{1,5}}(?:/[0-9]{{1,5}})?"
    rf" {_TOKEN}(?:/{_TOKEN})*(?: {_TOKEN})+"
)
# RFC 8839's candidate attribute; extensions are name and value pairs.
_CANDIDATE: Final = re.compile(
    r"candidate:[A-Za-z0-9+/]{1,32} [0-9]{1,3} (?i:udp|tcp) [0-9]{1,10}"
    r" (?P<address>[\x21-\x7e]+) (?P<port>[0-9]{1,5})"
    r" typ (?:host|srflx|prflx|relay)(?P<extensions>(?: [\x21-\x7e]+ [\x21-\x7e]+)*)"
)
_TOKEN_NAME: Final = re.compile(_TOKEN)
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.?")
_PORT: Final = re.compile("[0-9]{1,5}")
# Lines that name an address besides candidates: origin, connection, RTCP.
_ADDRESS_LINE: Final = re.compile(r"(c=|o=(?:[^ ]+ ){3}|a=rtcp:[0-9]+ )(.*)")
_NET_ADDRESS: Final = re.compile("IN IP[46] (.*)")
# What SDP writes for "no address" (and what browsers mask addresses with).
_NO_ADDRESS_V4: Final = str(ipaddress.IPv4Address(0))
_NO_ADDRESS_V6: Final = str(ipaddress.IPv6Address(0))
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
# IPv4-compatible and other reserved forms that may carry a private address.
_RESERVED_V6: Final = ipaddress.IPv6Network("::/8")


class SdpError(ValueError):
    """An SDP text that cannot be used; the message is a plain detail."""


def _lines(text: str) -> list[str]:
    """Split at CRLF or LF; refuse any other control or line-breaking character."""
    text = text.replace("\r\n", "\n")
    if _FORBIDDEN.search(text):
        raise SdpError("control or line-breaking character inside an SDP line")
    if _UNTYPED.search(text):
        raise SdpError("malformed SDP line")
    return [line for line in text.split("\n") if line]


@dataclass(slots=True)
class _Media:
    """One m-section: its `m=` line first."""

    lines: list[str]

    @property
    def kind(self) -> str:
        return self.lines[0][2:].split(" ", 1)[0]

    @property
    def mid(self) -> str | None:
        return next(
            (line[6:] for line in self.lines if line.startswith("a=mid:")), None
        )

    @property
    def receive_only(self) -> bool:
        """Whether its one direction is `recvonly` or `inactive`, exactly."""
        directions = [line for line in self.lines if _DIRECTION.match(line)]
        return len(directions) == 1 and directions[0] in _RECEIVE_ONLY

    def rejected(self) -> list[str]:
        """Return this section refused: port 0, same formats, no transport."""
        kind, _port, rest = self.lines[0][2:].split(" ", 2)
        mid = self.mid
        return [
            f"m={kind} 0 {rest}",
            "c=IN IP4 0.0.0.0",
            *([f"a=mid:{mid}"] if mid is not None else []),
            "a=inactive",
        ]


@dataclass(slots=True)
class _Sdp:
    """A session description split into its session part and m-sections."""

    session: list[str]
    media: list[_Media]

    @classmethod
    def parse(cls, text: str) -> _Sdp:
        lines = _lines(text)
        # One description: a parser could start afresh at a second `v=`.
        if not lines or lines[0] != "v=0" or any(x.startswith("v=") for x in lines[1:]):
            raise SdpError("not an SDP session description")
        sdp = cls(session=[], media=[])
        for line in lines:
            if line.startswith("m="):
                if not _M_LINE.fullmatch(line):
                    raise SdpError("malformed m-line")
                if len(sdp.media) == MAX_MEDIA:
                    raise SdpError(f"more than {MAX_MEDIA} m-sections")
                sdp.media.append(_Media([line]))
            elif sdp.media:
                sdp.media[-1].lines.append(line)
            else:
                sdp.session.append(line)
        if not sdp.media:
            raise SdpError("no m-line")
        return sdp

    @property
    def bundle(self) -> list[str]:
        for line in self.session:
            if line.startswith("a=group:BUNDLE"):
                return line.split(" ")[1:]
        return []

    def render(self, media: Sequence[list[str]] | None = None) -> str:
        sections = [m.lines for m in self.media] if media is None else media
        return "\r\n".join([*self.session, *(x for s in sections for x in s)]) + "\r\n"


def _is_candidate(line: str) -> bool:
    return line.startswith("a=candidate:") or line == END_OF_CANDIDATES


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_public(address: str) -> bool:
    """Return whether an SDP address is a literal, globally reachable unicast IP.

    A hostname never is: an mDNS `.local` name is the LAN's, and any other
    name would be resolved by the camera to wherever its owner points it.
    """
    ip = _ip(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None or ip.is_site_local:
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip in _RESERVED_V6:
            return False
    return ip.is_global and not ip.is_multicast


def _candidate(text: str, *, allow_private: bool) -> str | None:
    """Return a `candidate:` attribute as it may cross the home's boundary, or None.

    Dropped: anything RFC 8839's grammar does not describe, and outside lab
    mode an address that is not public. A related address that is not public
    is masked (0.0.0.0, port 0), as browsers mask it: ICE never uses it.
    """
    match = _CANDIDATE.fullmatch(text)
    if match is None or not _is_address(match["address"]):
        return None
    if not 0 < int(match["port"]) <= 0xFFFF:
        return None
    if not (allow_private or is_public(match["address"])):
        return None
    fields = match["extensions"].split(" ")[1:]
    pairs = list(zip(fields[::2], fields[1::2], strict=True))
    for name, value in pairs:
        if not _TOKEN_NAME.fullmatch(name):
            return None
        if (name == "raddr" and not _is_address(value)) or (
            name == "rport" and not (_PORT.fullmatch(value) and int(value) <= 0xFFFF)
        ):
            return None
    if allow_private or all(is_public(v) for n, v in pairs if n == "raddr"):
        return text
    extensions = "".join(f" {name} {_masked(name, value)}" for name, value in pairs)
    return text[: match.start("extensions")] + extensions


def _masked(name: str, value: str) -> str:
    if name == "raddr":
        return _NO_ADDRESS_V6 if ":" in value else _NO_ADDRESS_V4
    return "0" if name == "rport" else value


def _is_address(text: str) -> bool:
    return _ip(text) is not None or (
        len(text) <= 253 and _HOSTNAME.fullmatch(text) is not None
    )


def _candidate_attribute(candidate: str) -> str:
    return candidate if candidate.startswith("candidate:") else f"candidate:{candidate}"


def _hide_address(line: str) -> str:
    """Return an origin, connection or RTCP line without an address that is not public."""
    match = _ADDRESS_LINE.fullmatch(line)
    if match is None:
        return line
    net = _NET_ADDRESS.fullmatch(match[2])
    if net is not None and is_public(net[1]):
        return line
    if match[2].startswith("IN IP6 "):
        return f"{match[1]}IN IP6 {_NO_ADDRESS_V6}"
    return f"{match[1]}IN IP4 {_NO_ADDRESS_V4}"


@dataclass(slots=True)
class Plan:
    """The city's offer, which of its m-sections the camera sees, and the rules kept."""

    offer: _Sdp
    kept: list[int]
    # Outside lab mode, only candidates for public addresses cross.
    allow_private: bool
    city_mids: list[str | None]
    bundle: list[str]
    ufrag: str | None
    camera_offer: str = ""
    camera_mids: list[str | None] = field(default_factory=list)
    # The city's candidates the camera was given (offer and trickle).
    passed: int = 0

    def camera_index(self, mid: str | None) -> int | None:
        """Map a city mid to the camera's m-line index (None: nowhere)."""
        if mid not in self.city_mids:
            return 0 if mid is None else None
        city_index = self.city_mids.index(mid)
        if city_index in self.kept:
            return self.kept.index(city_index)
        # A bundled, removed m-section shares the bundle's transport.
        return 0 if mid in self.bundle else None

    def admit(self, candidate: str) -> str | None:
        """Return one of the city's candidates as the camera may get it, or None."""
        if self.passed >= MAX_CITY_CANDIDATES:
            return None
        admitted = _candidate(candidate, allow_private=self.allow_private)
        if admitted is not None:
            self.passed += 1
        return admitted

    def camera_candidates(self, trickle: Trickle) -> list[RTCIceCandidateInit]:
        """Return the trickled candidates the camera gets, with its m-line index."""
        candidates: list[RTCIceCandidateInit] = []
        for mid, candidate in trickle.candidates:
            if (index := self.camera_index(mid)) is None:
                continue
            if (admitted := self.admit(candidate)) is not None:
                candidates.append(
                    RTCIceCandidateInit(
                        admitted,
                        sdp_mid=self.camera_mids[index],
                        sdp_m_line_index=index,
                    )
                )
        return candidates


def _to_camera(plan: Plan, lines: list[str]) -> list[str]:
    """Return offer lines as the camera sees them: only admitted candidates."""
    shown: list[str] = []
    for line in lines:
        if line.startswith("a=candidate:"):
            if (admitted := plan.admit(line[2:])) is None:
                continue
            line = f"a={admitted}"
        shown.append(line)
    return shown


def plan_offer(text: str, *, share_audio: bool, allow_private: bool) -> Plan:
    """Validate a city's offer and derive what the camera is asked for."""
    offer = _Sdp.parse(text)
    # A session-level direction counts for nothing: each section needs its own.
    if not all(media.receive_only for media in offer.media):
        raise SdpError(
            "every m-section must carry exactly one direction, recvonly or inactive"
        )
    kept = [
        index
        for index, media in enumerate(offer.media)
        if share_audio or media.kind != "audio"
    ]
    if not any(offer.media[index].kind == "video" for index in kept):
        raise SdpError("the offer asks for no video")
    mids = [media.mid for media in offer.media]
    bundle = offer.bundle
    plan = Plan(
        offer=offer,
        kept=kept,
        allow_private=allow_private,
        city_mids=mids,
        bundle=bundle,
        ufrag=next(
            (
                line[12:]
                for line in [*offer.session, *(x for m in offer.media for x in m.lines)]
                if line.startswith("a=ice-ufrag:")
            ),
            None,
        ),
    )
    removed = {mid for index, mid in enumerate(mids) if index not in kept}
    sections = [list(offer.media[i].lines) for i in kept]
    session = list(offer.session)
    if removed and bundle:
        kept_bundle = [mid for mid in bundle if mid not in removed]
        session = [
            " ".join(["a=group:BUNDLE", *kept_bundle])
            if line.startswith("a=group:BUNDLE")
            else line
            for line in session
        ]
        # A non-trickling client may have put the bundle's candidates only in
        # a removed m-section: move them to the first section the camera sees.
        first = sections[0]
        if not any(_is_candidate(line) for line in first):
            for index, media in enumerate(offer.media):
                if index not in kept and media.mid in bundle:
                    first.extend(line for line in media.lines if _is_candidate(line))
                    break
    camera_offer = _Sdp(
        session=_to_camera(plan, session),
        media=[_Media(_to_camera(plan, s)) for s in sections],
    )
    plan.camera_offer = camera_offer.render()
    plan.camera_mids = [media.mid for media in camera_offer.media]
    return plan


def build_answer(
    plan: Plan, answer_text: str, candidates: Sequence[RTCIceCandidateInit]
) -> str:
    """Return the city's answer from the camera's, as the contract shapes it."""
    try:
        answer = _Sdp.parse(answer_text)
    except SdpError:
        raise SdpError("the camera's answer is not SDP") from None
    if [m.kind for m in answer.media] != [plan.offer.media[i].kind for i in plan.kept]:
        raise SdpError("the camera's answer does not match the offer")

    def shown(lines: list[str]) -> list[str]:
        result: list[str] = []
        for line in lines:
            if line == "a=sendrecv":
                # The offer is receive-only, so the home only ever sends.
                line = "a=sendonly"
            elif line.startswith("a=candidate:"):
                candidate = _candidate(line[2:], allow_private=plan.allow_private)
                if candidate is None:
                    continue
                line = f"a={candidate}"
            elif not plan.allow_private:
                line = _hide_address(line)
            result.append(line)
        return result

    answer.session = shown(answer.session)
    sections = [shown(media.lines) for media in answer.media]
    mids = [media.mid for media in answer.media]
    for candidate in candidates:
        if candidate.sdp_mid in mids:
            index = mids.index(candidate.sdp_mid)
        else:
            index = candidate.sdp_m_line_index or 0
        if not 0 <= index < len(sections) or not candidate.candidate:
            continue
        text = _candidate(
            _candidate_attribute(candidate.candidate),
            allow_private=plan.allow_private,
        )
        if text is not None and (line := f"a={text}") not in sections[index]:
            sections[index].append(line)
    city: list[list[str]] = []
    for city_index, media in enumerate(plan.offer.media):
        if city_index in plan.kept:
            city.append(sections[plan.kept.index(city_index)])
        else:
            city.append(media.rejected())
    return answer.render(city)


def has_candidates(answer_text: str) -> bool:
    """Return whether every transport of an answer has a candidate.

    Bundled m-sections share one transport; a rejected one (port 0) has none.
    """
    answer = _Sdp.parse(answer_text)
    bundle = answer.bundle
    bundle_used = bundle_found = False
    for media in answer.media:
        if media.lines[0][2:].split(" ", 2)[1] == "0":
            continue
        found = any(line.startswith("a=candidate:") for line in media.lines)
        if media.mid is not None and media.mid in bundle:
            bundle_used = True
            bundle_found = bundle_found or found
        elif not found:
            return False
    return bundle_found or not bundle_used


@dataclass(slots=True)
class Trickle:
    """Candidates of a trickle-ice-sdpfrag body, per mid."""

    ufrag: str | None
    candidates: list[tuple[str | None, str]]


def parse_sdpfrag(text: str) -> Trickle:
    """Parse a PATCH body (RFC 8840), with the offer's line rules."""
    ufrag: str | None = None
    mid: str | None = None
    candidates: list[tuple[str | None, str]] = []
    for line in _lines(text):
        if line.startswith("a=ice-ufrag:"):
            ufrag = line[12:]
        elif line.startswith("m="):
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            candidates.append((mid, line[2:]))
    return Trickle(ufrag=ufrag, candidates=candidates)
