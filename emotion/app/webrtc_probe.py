"""What the browser tests and scripts/bench_webrtc.py run in headless Chromium to watch a real
WebRTC session from the browser's side: a fake camera playing a clip, and WebRTC's own counters.

Nothing here is used by the app itself; it lives in the package (as `emotion.clips` does) so that
the tests and the benchmark script share one copy.
"""

from __future__ import annotations

from pathlib import Path


def camera_flags(y4m: str | Path) -> tuple[str, ...]:
    """Chromium flags for a camera that plays the clip `y4m`, allowed without asking."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}",
            "--autoplay-policy=no-user-gesture-required")


# Keeps every RTCPeerConnection a page makes (window.__peerConnections), so WebRTC's own counters
# (frames the camera sent, frames that came back) can be read without touching the component.
PEER_CONNECTION_HOOK_JS = """
(() => {
  const Original = window.RTCPeerConnection;
  if (!Original || Original.__kept) return;
  window.__peerConnections = [];
  function Kept(...args) {
    const pc = new Original(...args);
    window.__peerConnections.push(pc);
    return pc;
  }
  Kept.prototype = Original.prototype;
  Object.setPrototypeOf(Kept, Original);  // static members such as generateCertificate
  Kept.__kept = true;
  window.RTCPeerConnection = Kept;
})();
"""

# The video RTP counters of the page's latest peer connection (an async script: null when the
# hook saw none): outbound is the camera going to the server, inbound the annotated video back.
RTP_STATS_JS = """
const done = arguments[arguments.length - 1];
const pcs = window.__peerConnections || [];
if (!pcs.length) { done(null); return; }
pcs[pcs.length - 1].getStats().then(report => {
  const out = {};
  report.forEach(s => {
    if (s.kind !== 'video' || (s.type !== 'outbound-rtp' && s.type !== 'inbound-rtp')) return;
    out[s.type] = {timestamp: s.timestamp, framesSent: s.framesSent, framesEncoded: s.framesEncoded,
      framesReceived: s.framesReceived, framesDecoded: s.framesDecoded, framesDropped: s.framesDropped,
      frameWidth: s.frameWidth, frameHeight: s.frameHeight, framesPerSecond: s.framesPerSecond,
      totalEncodeTime: s.totalEncodeTime, totalDecodeTime: s.totalDecodeTime,
      qualityLimitationReason: s.qualityLimitationReason, encoderImplementation: s.encoderImplementation,
      decoderImplementation: s.decoderImplementation};
  });
  done(out);
}).catch(() => done(null));
"""
