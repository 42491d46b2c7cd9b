// The reference city viewer: plays a share's stream_url or webrtc_url here.
//
// The page is opened as index.html?src=<url>[&player=hls|webrtc][&audio=1].
// Each way of
// playing is one function in PLAYERS taking (video, url, stats); the rest
// of the page (frame counting, freeze detection, status) is shared.
// window.viewerStats is what the operator sees, and what tests read.
"use strict";

// A picture that does not change for longer than this counts as frozen
// (a little more than one 0.5 s LL-HLS part).
const FREEZE_MS = 600;

const stats = {
  player: null,
  src: null,
  openedAt: performance.now(),
  firstFrameMs: null, // from page load to the first decoded frame
  firstFrameEpochMs: null, // the wall clock then (Date.now())
  frames: 0,
  freezes: 0,
  longestFreezeMs: 0,
  stalls: 0, // the player's own stall reports
  errors: [],
  fatal: null, // the error the player gave up on, if it did
  requests: 0,
  bytes: 0,
  fetches: {}, // how often each media file (init, segment, part) was fetched
  behindLiveMs: null, // wall clock minus the shown frame's capture time
  latencyMs: null, // the player's own estimate (live edge minus position)
};
window.viewerStats = stats;

function countFrames(video) {
  let lastFrameAt = null;
  let frozenSince = null;
  const onFrame = (now) => {
    stats.frames += 1;
    if (stats.firstFrameMs === null) {
      stats.firstFrameMs = now - stats.openedAt;
      stats.firstFrameEpochMs = Date.now();
    }
    lastFrameAt = now;
    frozenSince = null;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  setInterval(() => {
    if (lastFrameAt === null || video.paused) return;
    const still = performance.now() - lastFrameAt;
    if (still > FREEZE_MS && frozenSince === null) {
      frozenSince = lastFrameAt;
      stats.freezes += 1;
    }
    stats.longestFreezeMs = Math.max(stats.longestFreezeMs, frozenSince === null ? 0 : still);
  }, 100);
}

// hls.js, as an RTCC console in a browser would use it.
function playHls(video, url) {
  if (!window.Hls || !Hls.isSupported()) {
    video.src = url; // Safari plays HLS natively
    return null;
  }
  // Every request hls.js makes, counted with its size.
  class CountingLoader extends Hls.DefaultConfig.loader {
    load(context, config, callbacks) {
      const onSuccess = callbacks.onSuccess;
      callbacks.onSuccess = (response, loadStats, ...rest) => {
        stats.requests += 1;
        stats.bytes += loadStats.loaded || 0;
        if (context.frag) {
          const file = new URL(context.url).pathname.split("/").pop();
          stats.fetches[file] = (stats.fetches[file] || 0) + 1;
        }
        onSuccess(response, loadStats, ...rest);
      };
      super.load(context, config, callbacks);
    }
  }
  const hls = new Hls({ lowLatencyMode: true, loader: CountingLoader });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) stats.stalls += 1;
    stats.errors.push(data.details);
    if (stats.errors.length > 50) stats.errors.shift();
    if (data.fatal && data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else if (data.fatal) stats.fatal = data.details;
  });
  hls.on(Hls.Events.FRAG_CHANGED, () => {
    if (hls.playingDate) stats.behindLiveMs = Date.now() - hls.playingDate.getTime();
    stats.latencyMs = Number.isFinite(hls.latency) ? hls.latency * 1000 : null;
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  return hls;
}

// WHEP (RFC 9725) with the browser's own RTCPeerConnection: a receive-only
// offer (video only unless the page is opened with audio=1), the answer,
// then this side's candidates in one PATCH; the session is DELETEd on unload.
async function playWebrtc(video, url) {
  const pc = new RTCPeerConnection();
  const audio = new URLSearchParams(location.search).get("audio") === "1";
  for (const kind of audio ? ["audio", "video"] : ["video"]) {
    pc.addTransceiver(kind, { direction: "recvonly" });
  }
  const stream = new MediaStream();
  pc.ontrack = (event) => {
    stream.addTrack(event.track);
    video.srcObject = stream;
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "disconnected") stats.stalls += 1;
    if (pc.connectionState === "failed") stats.errors.push("connection failed");
  };
  const candidates = [];
  const gathered = new Promise((done) => {
    pc.onicecandidate = (event) => {
      if (event.candidate && event.candidate.candidate) candidates.push(event.candidate);
      else done();
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: pc.localDescription.sdp,
  });
  stats.requests += 1;
  const answer = await response.text();
  if (response.status !== 201) {
    pc.close();
    throw new Error(`offer refused: HTTP ${response.status} ${answer}`);
  }
  const session = new URL(response.headers.get("Location"), url).href;
  addEventListener("pagehide", () => {
    fetch(session, { method: "DELETE", keepalive: true });
    pc.close();
  });
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  await gathered;
  if (candidates.length) {
    const fragment =
      candidates.map((c) => `a=mid:${c.sdpMid}\r\na=${c.candidate}\r\n`).join("") +
      "a=end-of-candidates\r\n";
    const patched = await fetch(session, {
      method: "PATCH",
      headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
      body: fragment,
    });
    stats.requests += 1;
    // A home that takes no trickle has the candidates it needs from the answer.
    if (!patched.ok && patched.status !== 405) stats.errors.push(`trickle: HTTP ${patched.status}`);
  }
  setInterval(async () => {
    (await pc.getStats()).forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      stats.bytes = s.bytesReceived || 0;
      if (s.jitterBufferEmittedCount) {
        stats.latencyMs = (s.jitterBufferDelay / s.jitterBufferEmittedCount) * 1000;
      }
    });
  }, 500);
}

const PLAYERS = { hls: playHls, webrtc: playWebrtc };

function showStatus() {
  const status = document.getElementById("status");
  const rows = {
    player: stats.player,
    "first frame": stats.firstFrameMs === null ? "waiting" : `${(stats.firstFrameMs / 1000).toFixed(2)} s`,
    frames: stats.frames,
    freezes: stats.freezes,
    stalls: stats.stalls,
    requests: stats.requests,
    "bytes": stats.bytes,
    "behind live": stats.behindLiveMs === null ? "?" : `${(stats.behindLiveMs / 1000).toFixed(1)} s`,
    "last error": stats.errors.at(-1) || "none",
  };
  status.replaceChildren(
    ...Object.entries(rows).flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      return [dt, dd];
    }),
  );
}

function main() {
  const query = new URLSearchParams(location.search);
  stats.src = query.get("src");
  stats.player = query.get("player") || "hls";
  const video = document.getElementById("video");
  if (!stats.src || !(stats.player in PLAYERS)) {
    stats.errors.push("no stream: open index.html?src=<stream_url or webrtc_url>&player=hls|webrtc");
  } else {
    countFrames(video);
    Promise.resolve()
      .then(() => PLAYERS[stats.player](video, stats.src, stats))
      .catch((err) => stats.errors.push(String(err)));
  }
  setInterval(showStatus, 500);
  showStatus();
}

main();
