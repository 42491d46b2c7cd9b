"""SDP of the WHEP endpoint: checking offers, what the camera sees, the answer the city gets.

The SDP is rewritten only where the contract requires it: audio m-lines are
cut out of what the camera sees unless the resident shares audio (and come
back rejected, port 0, in the answer), `sendrecv` answers become `sendonly`,
and candidates the camera trickles after its answer are gathered into it, so
that a client which does not trickle (ffmpeg, OBS) can connect.

Pure: no Home Assistant import, and no HTTP status; the endpoint decides what
an `SdpError` means for the request at hand (a bad offer, or a camera that
answered badly).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from webrtc_models import RTCIceCandidateInit

END_OF_CANDIDATES: Final = "a=end-of-candidates"
_RECEIVE_ONLY: Final = frozenset({"recvonly", "inactive"})
_DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})


class SdpError(ValueError):
    """An SDP text that cannot be used; the message is a plain detail."""


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

    def direction(self, default: str) -> str:
        return next(
            (line[2:] for line in self.lines if line[2:] in _DIRECTIONS), default
        )

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
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
        if not lines or lines[0] != "v=0":
            raise SdpError("not an SDP session description")
        if any(len(line) < 2 or line[1] != "=" for line in lines):
            raise SdpError("malformed SDP line")
        sdp = cls(session=[], media=[])
        for line in lines:
            if line.startswith("m="):
                if len(line[2:].split(" ", 3)) < 4:
                    raise SdpError("malformed m-line")
                sdp.media.append(_Media([line]))
            elif sdp.media:
                sdp.media[-1].lines.append(line)
            else:
                sdp.session.append(line)
        if not sdp.media:
            raise SdpError("no m-line")
        return sdp

    @property
    def direction(self) -> str:
        return next((line[2:] for line in self.session if line[2:] in _DIRECTIONS), "")

    @property
    def bundle(self) -> list[str]:
        for line in self.session:
            if line.startswith("a=group:BUNDLE"):
                return line.split()[1:]
        return []

    def render(self, media: Sequence[list[str]] | None = None) -> str:
        sections = [m.lines for m in self.media] if media is None else media
        return "\r\n".join([*self.session, *(x for s in sections for x in s)]) + "\r\n"


def _is_candidate(line: str) -> bool:
    return line.startswith("a=candidate:") or line == END_OF_CANDIDATES


@dataclass(slots=True)
class Plan:
    """The city's offer, and which of its m-sections the camera sees."""

    offer: _Sdp
    kept: list[int]
    camera_offer: str
    camera_mids: list[str | None]

    def camera_index(self, mid: str | None) -> int | None:
        """Map a city mid to the camera's m-line index (None: nowhere)."""
        for city_index, media in enumerate(self.offer.media):
            if media.mid == mid:
                if city_index in self.kept:
                    return self.kept.index(city_index)
                # A bundled, removed m-section shares the bundle's transport.
                return 0 if mid in self.offer.bundle else None
        return 0 if mid is None else None

    @property
    def ufrag(self) -> str | None:
        """Return the offer's ICE username fragment (a PATCH must match it)."""
        sdp = self.offer
        for line in [*sdp.session, *(x for m in sdp.media for x in m.lines)]:
            if line.startswith("a=ice-ufrag:"):
                return line[12:]
        return None


def plan_offer(text: str, *, share_audio: bool) -> Plan:
    """Validate a city's offer and derive what the camera is asked for."""
    offer = _Sdp.parse(text)
    default = offer.direction or "sendrecv"
    if any(m.direction(default) not in _RECEIVE_ONLY for m in offer.media):
        raise SdpError("the offer must be receive-only (recvonly or inactive)")
    kept = [
        index
        for index, media in enumerate(offer.media)
        if share_audio or media.kind != "audio"
    ]
    if not kept:
        raise SdpError("the offer asks for no video")
    removed = {offer.media[i].mid for i in range(len(offer.media)) if i not in kept}
    sections = [list(offer.media[i].lines) for i in kept]
    bundle = offer.bundle
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
    camera_offer = _Sdp(session=session, media=[_Media(s) for s in sections])
    return Plan(
        offer=offer,
        kept=kept,
        camera_offer=camera_offer.render(),
        camera_mids=[media.mid for media in camera_offer.media],
    )


def _candidate_line(candidate: str) -> str:
    return "a=" + (
        candidate if candidate.startswith("candidate:") else f"candidate:{candidate}"
    )


def build_answer(
    plan: Plan, answer_text: str, candidates: Sequence[RTCIceCandidateInit]
) -> str:
    """Return the city's answer from the camera's, as the contract shapes it."""
    try:
        answer = _Sdp.parse(answer_text)
    except SdpError:
        raise SdpError("the camera's answer is not SDP") from None
    if len(answer.media) != len(plan.kept):
        raise SdpError("the camera's answer does not match the offer")
    # The offer is receive-only, so the home only ever sends.
    answer.session = [
        "a=sendonly" if line == "a=sendrecv" else line for line in answer.session
    ]
    sections = [
        ["a=sendonly" if line == "a=sendrecv" else line for line in media.lines]
        for media in answer.media
    ]
    mids = [media.mid for media in answer.media]
    for candidate in candidates:
        if candidate.sdp_mid in mids:
            index = mids.index(candidate.sdp_mid)
        else:
            index = candidate.sdp_m_line_index or 0
        if index < len(sections) and candidate.candidate:
            line = _candidate_line(candidate.candidate)
            if line not in sections[index]:
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
    """Parse a PATCH body (RFC 8840)."""
    ufrag: str | None = None
    mid: str | None = None
    candidates: list[tuple[str | None, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError("malformed SDP fragment line")
        if line.startswith("a=ice-ufrag:"):
            ufrag = line[12:]
        elif line.startswith("m="):
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            candidates.append((mid, line[2:]))
    return Trickle(ufrag=ufrag, candidates=candidates)
