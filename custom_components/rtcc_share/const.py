"""Constants for the rtcc_share integration.

Kept free of Home Assistant imports: the pure policy module depends on it.
"""

from typing import Final

DOMAIN: Final = "rtcc_share"

# Config entry data (schema version 2: the camera by its entity registry id).
CONF_CAMERA_ENTITY_ID: Final = "camera_entity_id"
CONF_AGENCY_NAME: Final = "agency_name"
CONF_WEBHOOK_ID: Final = "webhook_id"
CONF_VERIFICATION_KEY: Final = "verification_key"

# Config entry options.
CONF_MAX_DISTANCE_M: Final = "max_distance_m"
CONF_MAX_DURATION_S: Final = "max_duration_s"
CONF_MAX_ACTIVATIONS_PER_DAY: Final = "max_activations_per_day"
CONF_MAX_SHARE_MINUTES_PER_DAY: Final = "max_share_minutes_per_day"
CONF_ALLOWED_INCIDENT_TYPES: Final = "allowed_incident_types"
CONF_CONSENT_LAPSE_DAYS: Final = "consent_lapse_days"
CONF_SHARE_AUDIO: Final = "share_audio"
CONF_NOTIFY_TARGETS: Final = "notify_targets"
CONF_ALLOW_HTTP_STREAM_URL: Final = "allow_http_stream_url"
CONF_AUDIT_RETENTION_DAYS: Final = "audit_retention_days"
CONF_REQUIRE_RECIPIENT: Final = "require_recipient"
# The kinds of live view the city may get (contract 1.1's `accept_streams`).
CONF_STREAM_KINDS: Final = "stream_kinds"
# ICE servers the resident lists for the city's WebRTC clients (WHEP `Link`).
CONF_ICE_SERVERS: Final = "ice_servers"
# The TURN shared secret (coturn's `static-auth-secret`) from which each share
# gets TURN credentials that expire with it.
CONF_TURN_SECRET: Final = "turn_secret"
# The resident accepts that the city keeps a fixed TURN user and password.
CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: Final = "ice_static_credentials_accepted"
# Keep the camera's newest keyframe interval in the home while consent is on,
# so a share starts from it at once (the city may see that much from before
# the grant).
CONF_INSTANT_START: Final = "instant_start"
# Rectangles painted black on every live view (contract 1.2), stored as
# [left, top, right, bottom] fractions of the picture.
CONF_PRIVACY_MASKS: Final = "privacy_masks"
STREAM_HLS: Final = "hls"
STREAM_WEBRTC: Final = "webrtc"
STREAM_KINDS: Final = (STREAM_HLS, STREAM_WEBRTC)

DEFAULT_ALLOWED_INCIDENT_TYPES: Final = (
    "shots_fired",
    "homicide",
    "robbery",
    "carjacking",
    "kidnapping",
    "missing_person",
    "burglary_in_progress",
    "assault",
)

# The privacy-preserving defaults.
DEFAULT_OPTIONS: Final[dict[str, object]] = {
    CONF_MAX_DISTANCE_M: 400,
    CONF_MAX_DURATION_S: 900,
    CONF_MAX_ACTIVATIONS_PER_DAY: 3,
    CONF_MAX_SHARE_MINUTES_PER_DAY: 60,
    CONF_ALLOWED_INCIDENT_TYPES: list(DEFAULT_ALLOWED_INCIDENT_TYPES),
    CONF_CONSENT_LAPSE_DAYS: 45,
    CONF_SHARE_AUDIO: False,
    CONF_NOTIFY_TARGETS: [],
    CONF_ALLOW_HTTP_STREAM_URL: False,
    CONF_AUDIT_RETENTION_DAYS: 0,
    # Read with this default, so entries made before the option need no
    # migration; the config flow turns it on for a new entry with a whpk_ key.
    CONF_REQUIRE_RECIPIENT: False,
    # WebRTC from a camera served by the home shows the home's address to the
    # city: the resident opts in (the flow does for WebRTC-only cameras).
    CONF_STREAM_KINDS: [STREAM_HLS],
    CONF_ICE_SERVERS: [],
    CONF_TURN_SECRET: "",
    # A password handed out is the city's for good, not for one share.
    CONF_ICE_STATIC_CREDENTIALS_ACCEPTED: False,
    # Nothing from before a grant unless the resident opts in.
    CONF_INSTANT_START: False,
    CONF_PRIVACY_MASKS: [],
}

# Inclusive option ranges.
OPTION_RANGES: Final[dict[str, tuple[int, int]]] = {
    CONF_MAX_DISTANCE_M: (50, 2000),
    CONF_MAX_DURATION_S: (60, 3600),
    CONF_MAX_ACTIVATIONS_PER_DAY: (1, 24),
    CONF_MAX_SHARE_MINUTES_PER_DAY: (1, 1440),
    CONF_CONSENT_LAPSE_DAYS: (0, 365),
    CONF_AUDIT_RETENTION_DAYS: (0, 3650),
}

# \Z, not $: `$` also matches before a trailing newline.
INCIDENT_TYPE_PATTERN: Final = r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z"
INCIDENT_TYPE_MAX_LEN: Final = 64

# Standard Webhooks keys.
SECRET_PREFIX: Final = "whsec_"
PUBLIC_KEY_PREFIX: Final = "whpk_"
PRIVATE_KEY_PREFIX: Final = "whsk_"
SECRET_MIN_BYTES: Final = 24
SECRET_MAX_BYTES: Final = 64
SECRET_GENERATED_BYTES: Final = 32
ED25519_KEY_BYTES: Final = 32

# City API limits.
MAX_BODY_BYTES: Final = 64 * 1024
TIMESTAMP_TOLERANCE_S: Final = 300
ID_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,128}\Z"
MIN_REQUESTED_DURATION_S: Final = 30
MAX_REQUESTED_DURATION_S: Final = 86400
MAX_INCIDENT_RADIUS_M: Final = 5000
ROLLING_WINDOW_S: Final = 24 * 3600

# Unauthenticated failures are logged and audited at most this often per entry.
REJECTION_LOG_INTERVAL_S: Final = 60
# Authenticated refusals of one reason written in full per interval; the rest
# are counted into one record, so a flood cannot grow the log without bound.
REFUSALS_IN_FULL_PER_INTERVAL: Final = 3

# Events fired on the bus (the logbook describes them).
EVENT_GRANTED: Final = f"{DOMAIN}_granted"
EVENT_REFUSED: Final = f"{DOMAIN}_refused"
EVENT_ENDED: Final = f"{DOMAIN}_ended"

# Replay protection: accepted webhook-ids are remembered for the timestamp
# window; at most this many at once (then messages are refused, not forgotten).
SEEN_IDS_MAX: Final = 10_000
SEEN_IDS_SAVE_DELAY_S: Final = 1.0


def signal_update(entry_id: str) -> str:
    """Return the dispatcher signal sent when an entry's state changes."""
    return f"{DOMAIN}_{entry_id}_update"


def signal_event(entry_id: str) -> str:
    """Return the dispatcher signal carrying (event_type, data) of an activation."""
    return f"{DOMAIN}_{entry_id}_event"


def stop_action(entry_id: str) -> str:
    """Return the mobile-app notification action that stops the share."""
    return f"{DOMAIN.upper()}_STOP_{entry_id}"
