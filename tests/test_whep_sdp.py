"""The WHEP endpoint's SDP rules (contract 1.2), pure: offers, candidates, answers."""

import pytest
from webrtc_models import RTCIceCandidateInit

from custom_components.rtcc_share.live.webrtc_sdp import (
    MAX_CITY_CANDIDATES,
    MAX_MEDIA,
    Plan,
    SdpError,
    build_answer,
    is_public,
    parse_sdpfrag,
    plan_offer,
)

_FINGERPRINT = "a=fingerprint:sha-256 " + ":".join(["4A"] * 32)
# Global unicast addresses (the documentation ranges are not global).
PUBLIC = "81.2.69.142"
PUBLIC6 = "2a00:1450:4001:81b::200e"

# Chromium 131, `addTransceiver("video"|"audio", {direction: "recvonly"})`, with
# the candidates it gathered (mDNS host, server-reflexive, TCP).
CHROMIUM = f"""v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45 46
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:3570390495 1 udp 2122194687 4b5d2f8c-25c5-4a61-bb53-ae3e9ccc6d1c.local 56789 typ host generation 0 network-id 1
a=candidate:842163049 1 udp 1686052607 {PUBLIC} 56789 typ srflx raddr 192.168.0.196 rport 56789 generation 0 network-id 1 network-cost 10
a=candidate:1467250027 1 tcp 1518280447 192.168.0.196 9 typ host tcptype active generation 0 network-id 1
a=ice-ufrag:Ab3d
a=ice-pwd:8fJ0pA7G2mY1xkZl0Z7KQ4aS
a=ice-options:trickle
{_FINGERPRINT}
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:toffset
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:45 AV1/90000
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Ab3d
a=ice-pwd:8fJ0pA7G2mY1xkZl0Z7KQ4aS
a=ice-options:trickle
{_FINGERPRINT}
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=recvonly
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
""".replace("\n", "\r\n")

# Firefox 133: a session-level `a=sendrecv`, which the m-sections override.
FIREFOX = f"""v=0
o=mozilla...THIS_IS_SDPARTA-99.0 5183498542431535064 0 IN IP4 0.0.0.0
s=-
t=0 0
a=sendrecv
{_FINGERPRINT}
a=group:BUNDLE 0 1
a=ice-options:trickle
a=msid-semantic:WMS *
m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98
c=IN IP4 0.0.0.0
a=recvonly
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1
a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1
a=fmtp:120 max-fs=12288;max-fr=60
a=fmtp:124 apt=120
a=ice-pwd:b1e4b4b3f8b8e6f3c0d4d1e2a3b4c5d6
a=ice-ufrag:9f3c2a1b
a=mid:0
a=rtcp-fb:120 nack
a=rtcp-fb:120 nack pli
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:120 VP8/90000
a=rtpmap:124 rtx/90000
a=rtpmap:121 VP9/90000
a=rtpmap:125 rtx/90000
a=rtpmap:126 H264/90000
a=rtpmap:127 rtx/90000
a=rtpmap:97 H264/90000
a=rtpmap:98 rtx/90000
a=setup:actpass
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 0.0.0.0
a=recvonly
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=ice-pwd:b1e4b4b3f8b8e6f3c0d4d1e2a3b4c5d6
a=ice-ufrag:9f3c2a1b
a=mid:1
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000/1
a=setup:actpass
""".replace("\n", "\r\n")

# Safari 18 (libwebrtc): video only, LF-only line ends as some clients send.
SAFARI = f"""v=0
o=- 2890844526 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:s4fR
a=ice-pwd:Yq2c8Jm1Zx5Vb3Nn7Lk9Pp0T
a=ice-options:trickle
{_FINGERPRINT}
a=setup:actpass
a=mid:0
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 H264/90000
a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:98 H264/90000
a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
"""

# A libdatachannel client (OBS, ffmpeg's WHIP/WHEP): session-level ICE, a
# rejected bundle-only audio section, candidates in the offer.
LIBDATACHANNEL = f"""v=0
o=rtc 3106009815 0 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=group:LS 0 1
a=msid-semantic:WMS *
a=setup:actpass
a=ice-ufrag:Qn3w
a=ice-pwd:u0Mz9rX4dT1pE6wQ2yH8kB5s
a=ice-options:ice2,trickle
{_FINGERPRINT}
m=video 53843 UDP/TLS/RTP/SAVPF 96
c=IN IP4 192.168.1.10
a=mid:0
a=recvonly
a=rtcp-mux
a=rtpmap:96 H264/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1
a=candidate:1 1 UDP 2122317823 192.168.1.10 53843 typ host
a=candidate:2 1 UDP 1686109951 {PUBLIC} 53843 typ srflx raddr 0.0.0.0 rport 0
a=candidate:3 1 UDP 2122317567 {PUBLIC6} 53843 typ host
a=end-of-candidates
m=audio 0 UDP/TLS/RTP/SAVPF 111
c=IN IP4 192.168.1.10
a=bundle-only
a=mid:1
a=inactive
a=rtcp-mux
a=rtpmap:111 opus/48000/2
""".replace("\n", "\r\n")

# The smallest offer: one receive-only video section.
VIDEO = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\n"
    "a=rtpmap:96 H264/90000\r\na=recvonly\r\n"
)
AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=recvonly\r\n"


def _plan(text: str, *, share_audio: bool = False, lab: bool = False) -> Plan:
    return plan_offer(text, share_audio=share_audio, allow_private=lab)


def _refused(text: str, *, share_audio: bool = False) -> str:
    with pytest.raises(SdpError) as refused:
        plan_offer(text, share_audio=share_audio, allow_private=False)
    return str(refused.value)


def _candidate(address: str, kind: str = "host", extra: str = "") -> str:
    return f"candidate:1 1 udp 2122260223 {address} 50000 typ {kind}{extra}"


# Browsers and WHEP clients


@pytest.mark.parametrize(
    "offer",
    [CHROMIUM, FIREFOX, SAFARI, LIBDATACHANNEL, VIDEO, VIDEO.replace("\r\n", "\n")],
    ids=["chromium", "firefox", "safari", "libdatachannel", "minimal", "lf-only"],
)
@pytest.mark.parametrize("share_audio", [False, True])
def test_real_offers_pass(offer: str, share_audio: bool) -> None:
    """Captured browser and client offers are accepted, audio kept only if shared."""
    plan = plan_offer(offer, share_audio=share_audio, allow_private=False)
    assert "m=video 9 " in plan.camera_offer or "m=video 53843 " in plan.camera_offer
    assert ("m=audio" in plan.camera_offer) is (share_audio and "m=audio" in offer)
    assert plan.camera_offer.endswith("\r\n")
    assert "\n" not in plan.camera_offer.replace("\r\n", "")


# 1. Receive-only, as every stack reads it


@pytest.mark.parametrize(
    "offer",
    [
        VIDEO.replace("a=recvonly\r\n", ""),
        VIDEO.replace("a=recvonly", "a=recvonly\r\na=sendrecv"),
        VIDEO.replace("a=recvonly", "a=sendrecv:1"),
        VIDEO.replace("a=recvonly", "a=sendrecv "),
        VIDEO.replace("a=recvonly", "a=recvonly "),
        VIDEO.replace("a=recvonly", "a=recvonly:1"),
        VIDEO.replace("a=recvonly", "a=RECVONLY"),
        VIDEO.replace("a=recvonly", "a=recvonly\r\na=SENDRECV"),
        VIDEO.replace("a=recvonly", "a=recvonly\r\na= sendrecv"),
        VIDEO.replace("a=recvonly", "a=recvonly\r\na=sendrecv\u00a0"),
        VIDEO.replace("a=recvonly", "a=inactive\r\na=inactive"),
        VIDEO.replace("a=recvonly", "a=recvonly\r\na=inactive"),
        VIDEO.replace("a=recvonly", "a=sendonly"),
        VIDEO + AUDIO.replace("a=recvonly\r\n", ""),
    ],
    ids=[
        "none",
        "recvonly-then-sendrecv",
        "sendrecv-colon",
        "sendrecv-space",
        "recvonly-space",
        "recvonly-colon",
        "upper-case",
        "upper-case-sendrecv-too",
        "space-before-sendrecv",
        "nbsp-after-sendrecv",
        "inactive-twice",
        "two-receive-only",
        "sendonly",
        "second-section-none",
    ],
)
def test_each_section_needs_exactly_one_receive_only_direction(offer: str) -> None:
    """A direction another stack could read as sending is refused, not interpreted."""
    assert "direction" in _refused(offer, share_audio=True)


def test_session_level_only_direction_counts_for_nothing() -> None:
    """`a=recvonly` in the session part alone leaves every section sendrecv."""
    offer = VIDEO.replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n").replace(
        "H264/90000\r\na=recvonly\r\n", "H264/90000\r\n"
    )
    assert offer.count("a=recvonly") == 1
    assert offer.index("a=recvonly") < offer.index("m=video")
    assert "direction" in _refused(offer)


@pytest.mark.parametrize("direction", ["a=recvonly", "a=inactive"])
@pytest.mark.parametrize("end", ["\r\n", "\n"])
def test_one_exact_direction_passes(direction: str, end: str) -> None:
    """Exactly `a=recvonly` or `a=inactive`, with CRLF or LF line ends."""
    offer = VIDEO.replace("a=recvonly", direction).replace("\r\n", end)
    assert direction in _plan(offer).camera_offer


# 2. The m-line grammar


@pytest.mark.parametrize(
    "m_line",
    [
        "m=audio\t9 UDP/TLS/RTP/SAVPF 111",
        "m=audio\u00a09 UDP/TLS/RTP/SAVPF 111",
        "m=audio  9 UDP/TLS/RTP/SAVPF 111",
        "m=audio 9  UDP/TLS/RTP/SAVPF 111",
        "m=audio 9 UDP/TLS/RTP/SAVPF  111",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 ",
        " m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=Audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=AUDIO 9 UDP/TLS/RTP/SAVPF 111",
        "m=text 9 UDP/TLS/RTP/SAVPF 111",
        "m=audio x UDP/TLS/RTP/SAVPF 111",
        "m=audio 9/ UDP/TLS/RTP/SAVPF 111",
        "m=audio 123456 UDP/TLS/RTP/SAVPF 111",
        "m=audio 9 UDP/TLS/RTP/SAVPF",
        "m=audio 9 UDP//SAVPF 111",
        "m=audio 9 UDP/TLS/RTP/SAVPF \uff11\uff11\uff11",
        "m=audio \u0669 UDP/TLS/RTP/SAVPF 111",
    ],
    ids=[
        "tab",
        "nbsp",
        "double-space-port",
        "double-space-proto",
        "double-space-fmt",
        "trailing-space",
        "leading-space",
        "capital",
        "upper-case",
        "unknown-media",
        "port-not-digits",
        "empty-count",
        "port-too-long",
        "no-format",
        "empty-proto-part",
        "fullwidth-format",
        "arabic-indic-port",
    ],
)
def test_m_line_grammar_is_strict(m_line: str) -> None:
    """An audio section hidden from the check by odd spacing is refused."""
    offer = VIDEO + AUDIO.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", m_line)
    message = _refused(offer)
    assert "m-line" in message or "SDP line" in message or "control" in message


@pytest.mark.parametrize(
    "m_line",
    [
        "m=video 9/2 UDP/TLS/RTP/SAVPF 96",
        "m=video 0 UDP/TLS/RTP/SAVPF 96 97",
        "m=video 65535 RTP/AVP 96",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    ],
)
def test_m_line_grammar_accepts_what_it_allows(m_line: str) -> None:
    """Port with a count, port 0, other profiles, a data channel section."""
    offer = VIDEO + f"{m_line}\r\na=mid:1\r\na=recvonly\r\n"
    assert m_line in _plan(offer).camera_offer


def test_audio_behind_a_tab_never_reaches_the_camera() -> None:
    """Before contract 1.2, `m=audio<TAB>9` passed as a non-audio section."""
    offer = VIDEO + AUDIO.replace("m=audio 9", "m=audio\t9").replace("111", "111 0")
    assert "control" in _refused(offer)


# 3. Lines inside a line


@pytest.mark.parametrize(
    "smuggled",
    [
        "a=recvonly\ra=sendrecv",
        "a=recvonly\x0ba=sendrecv",
        "a=recvonly\x0ca=sendrecv",
        "a=recvonly\x85a=sendrecv",
        "a=recvonly\u2028a=sendrecv",
        "a=recvonly\u2029a=sendrecv",
        "a=recvonly\x1ca=sendrecv",
        "a=recvonly\x1ea=sendrecv",
        "a=recvonly\x0b",
        "a=recvonly\r\r",
        "a=recvonly\x00",
        "a=recvonly\x7f",
        "a=recvonly\x9b",
        "a=recvonly\ta=x",
        "a=mid:0\x85m=audio 9 UDP/TLS/RTP/SAVPF 111\x85a=recvonly\r\na=recvonly",
        "a=mid:0\rm=audio 9 UDP/TLS/RTP/SAVPF 111\ra=recvonly\r\na=recvonly",
    ],
    ids=[
        "cr",
        "vt",
        "ff",
        "nel",
        "line-separator",
        "paragraph-separator",
        "file-separator",
        "record-separator",
        "trailing-vt",
        "cr-cr-lf",
        "nul",
        "del",
        "c1-csi",
        "tab",
        "audio-behind-nel",
        "audio-behind-cr",
    ],
)
def test_no_control_or_line_breaking_character_inside_a_line(smuggled: str) -> None:
    """What aiortc or another parser would split into more lines is refused."""
    offer = VIDEO.replace("a=recvonly", smuggled)
    assert "control" in _refused(offer, share_audio=True)


def test_a_bare_cr_cannot_hide_a_direction_in_a_fragment_either() -> None:
    """A PATCH body follows the offer's line rules."""
    with pytest.raises(SdpError):
        parse_sdpfrag(f"a=mid:0\r\na={_candidate(PUBLIC)}\rm=audio 9 RTP/AVP 0\r\n")
    with pytest.raises(SdpError):
        parse_sdpfrag(f"a=mid:0\r\na={_candidate(PUBLIC)}\x0b\r\n")


# 9. Thousands of m-lines


def test_one_session_description() -> None:
    """A second `v=` (a new description to some parsers), or a BOM, is refused."""
    assert "not an SDP" in _refused(VIDEO + VIDEO.replace("a=recvonly", "a=sendrecv"))
    assert "malformed" in _refused("\ufeff" + VIDEO)


def test_at_most_16_m_sections() -> None:
    """16 m-sections pass, a 17th is refused, and so are thousands."""
    section = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n"
    head = VIDEO.split("m=video", 1)[0]
    assert len(_plan(head + section * MAX_MEDIA).kept) == MAX_MEDIA
    assert "m-sections" in _refused(head + section * (MAX_MEDIA + 1))
    minimal = "m=video 9 P 9\na=inactive\n"
    flood = "v=0\n" + minimal * (64 * 1024 // len(minimal))
    assert "m-sections" in _refused(flood)


def test_no_video_is_refused() -> None:
    """Audio cut out (or only a data channel) leaves nothing to watch."""
    assert "no video" in _refused(VIDEO.replace("m=video", "m=audio"))
    data = VIDEO.replace(
        "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=application 9 UDP/DTLS/SCTP x"
    )
    assert "no video" in _refused(data)
    assert "no video" in _refused(VIDEO.replace("m=video", "m=audio"), share_audio=True)


# 11 and contract 1.2: candidates


@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC, True),
        (PUBLIC6, True),
        ("10.0.0.5", False),
        ("172.16.3.4", False),
        ("192.168.1.20", False),
        ("127.0.0.1", False),
        ("169.254.10.1", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("224.0.0.251", False),
        ("233.252.0.1", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        (f"{PUBLIC6}%eth0", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fec0::1", False),
        ("ff0e::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:192.168.1.1", False),
        (f"::ffff:{PUBLIC}", True),
        ("64:ff9b::a00:1", False),
        (f"64:ff9b::{PUBLIC}", True),
        ("::10.0.0.1", False),
        ("2002:c0a8:101::1", False),
        ("4b5d2f8c-25c5-4a61-bb53-ae3e9ccc6d1c.local", False),
        ("camera.example.org", False),
        ("167772161", False),
        ("010.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    """Only literal, global unicast addresses count as public; no hostname does."""
    assert is_public(address) is public


@pytest.mark.parametrize(
    "candidate",
    [
        _candidate(PUBLIC) + "\r\na=mid:evil",
        _candidate(PUBLIC) + "\na=sendrecv",
        _candidate(PUBLIC) + "\x0b",
        _candidate(PUBLIC).replace(" typ", "\ttyp"),
        _candidate(PUBLIC).replace(" typ", "  typ"),
        _candidate(PUBLIC) + " ",
        _candidate(PUBLIC) + " generation",
        _candidate(PUBLIC).replace("candidate:1", "candidate:"),
        _candidate(PUBLIC).replace("candidate:1", "candidate:" + "1" * 33),
        _candidate(PUBLIC).replace("candidate:1", "candidate:a-b"),
        _candidate(PUBLIC).replace(" 1 udp", " x udp"),
        _candidate(PUBLIC).replace("udp", "sctp"),
        _candidate(PUBLIC).replace("2122260223", "-1"),
        _candidate(PUBLIC).replace("50000", "0"),
        _candidate(PUBLIC).replace("50000", "65536"),
        _candidate(PUBLIC).replace("typ host", "typ hosts"),
        _candidate(PUBLIC).replace("typ host", "type host"),
        _candidate(f"{PUBLIC}\u00a0"),
        _candidate("bad_host!"),
        _candidate(PUBLIC, "srflx", " raddr 10.0.0.1:5 rport 5"),
        _candidate(PUBLIC, "srflx", " raddr 10.0.0.1 rport 70000"),
        _candidate(PUBLIC, extra=" g\u00e9n 0"),
        _candidate(PUBLIC, extra=' gen"(x) 0'),
        "Candidate:1 1 udp 1 " + PUBLIC + " 9 typ host",
        "",
    ],
    ids=[
        "crlf-injection",
        "lf-injection",
        "vt",
        "tab",
        "double-space",
        "trailing-space",
        "extension-without-value",
        "empty-foundation",
        "long-foundation",
        "foundation-char",
        "component",
        "transport",
        "priority",
        "port-0",
        "port-too-big",
        "type",
        "typ-keyword",
        "nbsp-address",
        "address-char",
        "raddr-with-port",
        "rport-too-big",
        "non-ascii-extension",
        "extension-name-char",
        "capital-attribute",
        "empty",
    ],
)
def test_malformed_candidates_go_nowhere(candidate: str) -> None:
    """Neither the camera (offer, PATCH) nor the city (answer) gets them, lab or not."""
    for lab in (False, True):
        offer = VIDEO.replace("a=recvonly", f"a=recvonly\r\na={candidate}")
        if "\x0b" in candidate or "\t" in candidate:
            with pytest.raises(SdpError):
                _plan(offer, lab=lab)
        elif "\n" not in candidate:
            assert "a=candidate" not in _plan(offer, lab=lab).camera_offer
        plan = plan_offer(VIDEO, share_audio=False, allow_private=lab)
        trickle = parse_sdpfrag("a=mid:0\r\n")
        trickle.candidates.append(("0", candidate))
        assert plan.camera_candidates(trickle) == []
        answer = build_answer(
            plan, _answer(), [RTCIceCandidateInit(candidate, sdp_m_line_index=0)]
        )
        assert "a=candidate" not in answer
        assert "evil" not in answer
        assert "a=sendrecv" not in answer


@pytest.mark.parametrize(
    "candidate",
    [
        # Chromium, Firefox, libdatachannel, aiortc, a TCP candidate, IPv6.
        f"candidate:842163049 1 udp 1686052607 {PUBLIC} 46243 typ srflx raddr"
        f" {PUBLIC} rport 46243 generation 0 ufrag Ab3d network-id 1 network-cost 10",
        f"candidate:0 1 UDP 2122252543 {PUBLIC} 54323 typ host",
        f"candidate:2 1 UDP 1686109951 {PUBLIC} 53843 typ srflx raddr 0.0.0.0 rport 0",
        f"candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 {PUBLIC} 3 typ host",
        f"candidate:3 1 TCP 2105524479 {PUBLIC} 9 typ host tcptype active",
        f"candidate:4 1 udp 41885439 {PUBLIC6} 3478 typ relay raddr {PUBLIC6} rport 1",
    ],
)
def test_well_formed_public_candidates_cross_unchanged(candidate: str) -> None:
    """Grammatical candidates for public addresses reach the camera as sent."""
    plan = plan_offer(VIDEO, share_audio=False, allow_private=False)
    trickle = parse_sdpfrag(f"a=mid:0\r\na={candidate}\r\n")
    assert plan.camera_candidates(trickle) == [
        RTCIceCandidateInit(candidate, sdp_mid="0", sdp_m_line_index=0)
    ]


PRIVATE = [
    "10.0.0.5",
    "127.0.0.1",
    "192.168.1.20",
    "169.254.3.3",
    "100.64.1.1",
    "fd00::5",
    "fe80::5",
    "::ffff:10.0.0.5",
    "0.0.0.0",
    "4b5d2f8c-25c5-4a61-bb53-ae3e9ccc6d1c.local",
]


def test_city_candidates_reach_the_camera_only_for_public_addresses() -> None:
    """In the offer and trickled; a private related address is masked."""
    lines = "".join(f"a={_candidate(address)}\r\n" for address in PRIVATE)
    srflx = _candidate(PUBLIC, "srflx", " raddr 10.0.0.5 rport 50001 generation 0")
    offer = VIDEO.replace("a=recvonly", f"a=recvonly\r\n{lines}a={srflx}")
    plan = plan_offer(offer, share_audio=False, allow_private=False)
    masked = _candidate(PUBLIC, "srflx", " raddr 0.0.0.0 rport 0 generation 0")
    assert [
        line for line in plan.camera_offer.split("\r\n") if "candidate" in line
    ] == [f"a={masked}"]
    trickle = parse_sdpfrag(
        f"a=mid:0\r\n{lines}a={_candidate(PUBLIC6, 'srflx', ' raddr fd00::5 rport 9')}"
    )
    assert [c.candidate for c in plan.camera_candidates(trickle)] == [
        _candidate(PUBLIC6, "srflx", " raddr :: rport 0")
    ]


def test_lab_mode_lets_private_candidates_through() -> None:
    """With `allow_http_stream_url` on, the LAN's candidates cross as they are."""
    lines = "".join(f"a={_candidate(address)}\r\n" for address in PRIVATE)
    offer = VIDEO.replace("a=recvonly", f"a=recvonly\r\n{lines}")
    plan = plan_offer(offer, share_audio=False, allow_private=True)
    assert plan.camera_offer.count("a=candidate:") == len(PRIVATE)
    srflx = _candidate(PUBLIC, "srflx", " raddr 10.0.0.5 rport 50001")
    trickle = parse_sdpfrag(f"a=mid:0\r\na={srflx}\r\n")
    assert [c.candidate for c in plan.camera_candidates(trickle)] == [srflx]


@pytest.mark.parametrize("lab", [False, True])
def test_city_candidates_are_bounded_per_session(lab: bool) -> None:
    """At most 32 reach the camera, offer and trickle together."""
    ten = "".join(f"a={_candidate(f'81.2.69.{n}')}\r\n" for n in range(10))
    offer = VIDEO.replace("a=recvonly", f"a=recvonly\r\n{ten}")
    plan = plan_offer(offer, share_audio=False, allow_private=lab)
    assert plan.camera_offer.count("a=candidate:") == 10
    many = "".join(f"a={_candidate(f'81.2.70.{n}')}\r\n" for n in range(40))
    first = plan.camera_candidates(parse_sdpfrag(f"a=mid:0\r\n{many}"))
    assert len(first) == MAX_CITY_CANDIDATES - 10
    assert plan.camera_candidates(parse_sdpfrag(f"a=mid:0\r\n{many}")) == []


def test_dropped_and_misdirected_candidates_do_not_count() -> None:
    """The bound counts what the camera got, not what was refused."""
    plan = plan_offer(VIDEO, share_audio=False, allow_private=False)
    private = "".join(f"a={_candidate('10.0.0.1')}\r\n" for _ in range(40))
    elsewhere = "".join(f"a={_candidate(PUBLIC)}\r\n" for _ in range(40))
    assert plan.camera_candidates(parse_sdpfrag(f"a=mid:0\r\n{private}")) == []
    assert plan.camera_candidates(parse_sdpfrag(f"a=mid:9\r\n{elsewhere}")) == []
    assert len(plan.camera_candidates(parse_sdpfrag(f"a=mid:0\r\n{elsewhere}"))) == 32


# The answer: no private address of the home's


def _answer(extra: str = "", *, host: str = "0.0.0.0") -> str:
    return (
        f"v=0\r\no=- 7 2 IN IP4 {host}\r\ns=-\r\nt=0 0\r\n"
        f"m=video 50000 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 {host}\r\na=mid:0\r\n"
        f"a=rtcp:9 IN IP4 {host}\r\na=rtpmap:96 H264/90000\r\na=sendrecv\r\n{extra}"
    )


def test_answer_names_no_private_address_outside_lab_mode() -> None:
    """Candidates, origin, connection and RTCP lines of the home's LAN are hidden."""
    plan = plan_offer(VIDEO, share_audio=False, allow_private=False)
    in_answer = "".join(f"a={_candidate(address)}\r\n" for address in PRIVATE)
    srflx = _candidate(PUBLIC, "srflx", " raddr 192.168.1.20 rport 50000")
    answer = build_answer(
        plan,
        _answer(in_answer + f"a={srflx}\r\n", host="192.168.1.20"),
        [
            RTCIceCandidateInit(_candidate("192.168.1.20"), sdp_m_line_index=0),
            RTCIceCandidateInit(_candidate(PUBLIC6).removeprefix("candidate:")),
        ],
    )
    for address in PRIVATE:
        if address != "0.0.0.0":
            assert address not in answer
    assert "o=- 7 2 IN IP4 0.0.0.0\r\n" in answer
    assert "c=IN IP4 0.0.0.0\r\n" in answer
    assert "a=rtcp:9 IN IP4 0.0.0.0\r\n" in answer
    assert [line for line in answer.split("\r\n") if "candidate" in line] == [
        f"a={_candidate(PUBLIC, 'srflx', ' raddr 0.0.0.0 rport 0')}",
        f"a={_candidate(PUBLIC6)}",
    ]


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (f"c=IN IP4 {PUBLIC}", f"c=IN IP4 {PUBLIC}"),
        (f"c=IN IP6 {PUBLIC6}", f"c=IN IP6 {PUBLIC6}"),
        ("c=IN IP6 fd00::1", "c=IN IP6 ::"),
        ("c=IN IP4 192.168.1.20/127", "c=IN IP4 0.0.0.0"),
        (f"c=IN IP4 {PUBLIC} 192.168.1.20", "c=IN IP4 0.0.0.0"),
        ("c=IN IP4 doorbell.lan", "c=IN IP4 0.0.0.0"),
        ("c=XX 192.168.1.20", "c=IN IP4 0.0.0.0"),
        ("a=rtcp:50001 IN IP4 10.1.1.1", "a=rtcp:50001 IN IP4 0.0.0.0"),
        ("a=rtcp:50001", "a=rtcp:50001"),
    ],
)
def test_answer_address_lines(line: str, shown: str) -> None:
    """Only a literal public address stays; anything else becomes unspecified."""
    plan = plan_offer(VIDEO, share_audio=False, allow_private=False)
    answer = build_answer(plan, _answer(f"{line}\r\n"), [])
    assert f"\r\n{shown}\r\n" in answer


def test_lab_mode_answer_keeps_the_lan() -> None:
    """With `allow_http_stream_url` on, the answer is as the camera gave it."""
    plan = plan_offer(VIDEO, share_audio=False, allow_private=True)
    host = f"a={_candidate('192.168.1.20')}\r\n"
    answer = build_answer(
        plan,
        _answer(host, host="192.168.1.20"),
        [RTCIceCandidateInit(_candidate("10.0.0.2"), sdp_m_line_index=0)],
    )
    assert "c=IN IP4 192.168.1.20\r\n" in answer
    assert host in answer
    assert _candidate("10.0.0.2") in answer


def test_camera_candidate_cannot_inject_lines() -> None:
    """A trickled candidate with CRLF puts no section, mid or direction in the answer."""
    plan = plan_offer(VIDEO + AUDIO, share_audio=False, allow_private=True)
    evil = _candidate("10.0.0.2") + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:evil"
    answer = build_answer(
        plan,
        _answer(),
        [
            RTCIceCandidateInit(evil + "\r\na=sendrecv", sdp_mid="0"),
            RTCIceCandidateInit(_candidate("10.0.0.3"), sdp_mid="0"),
        ],
    )
    assert answer.count("m=") == 2
    assert "m=audio 0 " in answer
    assert "evil" not in answer
    assert "a=sendrecv" not in answer
    assert _candidate("10.0.0.3") in answer


def test_camera_answer_must_match_the_kinds_asked() -> None:
    """An answer that turns the video section into audio is not passed on."""
    plan = plan_offer(VIDEO, share_audio=False, allow_private=False)
    with pytest.raises(SdpError, match="does not match"):
        build_answer(plan, _answer().replace("m=video", "m=audio"), [])
    with pytest.raises(SdpError, match="not SDP"):
        build_answer(plan, _answer("a=x\x85\r\n"), [])
