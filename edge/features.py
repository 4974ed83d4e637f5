"""The extension surface for optional stages (posture, zones, audio, media, Home Assistant …).

A :class:`Feature` is attached once the bus and transports exist, and sees the device only through
:class:`~edge.host.Host` (commands, messages and retained state, routes, reconnect hooks, its store).
It may take part in each frame (``process``, on the inference thread, after tracking), in idle ticks, in
the WebSocket ``connection`` message and in telemetry, and may register commands. Slow work (file
writes, folder scans, encoding, model runs) stays off the event loop, on the feature's own threads or
``asyncio.to_thread``; on the loop a feature does only small SQLite statements on the event store's
connection (the media index, analytics in ``meta``) and single metadata calls such as ``mkdir``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from edge.capture import Frame
from edge.messages import Message
from edge.tracking import Track
from edge.vision.detector import Detection

if TYPE_CHECKING:
    from edge.host import Host


@dataclasses.dataclass(slots=True)
class FrameContext:
    """What the vision stages produced for one frame, for features to build on."""

    frame: Frame
    detections: list[Detection]   # every box this frame (dogs labelled "dog", toys by their label)
    tracks: list[Track]           # live dog tracks after this frame (confirmed or not)
    present: bool                 # dog presence after this frame
    detected: bool = True         # the detector ran on this frame (motion gating skips still frames)
    seen_at: float | None = None  # frame time of the last detector run (this frame's when ``detected``)

    @property
    def now(self) -> float:
        return self.frame.captured

    @property
    def wall(self) -> float:
        return self.frame.wall

    @property
    def size(self) -> tuple[int, int]:
        return self.frame.image.shape[1], self.frame.image.shape[0]

    def seen_tracks(self) -> list[Track]:
        """Confirmed tracks matched at the last detector run (this very frame unless the gate skipped it)."""
        return [t for t in self.tracks if t.confirmed and t.last_seen == self.seen_time]

    @property
    def seen_time(self) -> float:
        return self.frame.captured if self.detected or self.seen_at is None else self.seen_at


class StartupError(RuntimeError):
    """The device cannot start (models missing and not fetchable …); the message says what to do."""


class Feature:
    """No-op defaults; subclasses override what they need."""

    name = "feature"

    def attach(self, host: Host) -> None:
        """Called on the loop before threads start: register commands, listeners, HTTP routes."""

    async def start(self) -> None:
        """Called on the loop after the transports started."""

    async def stop(self) -> None:
        """Called on shutdown, before the transports stop."""

    def process(self, ctx: FrameContext) -> list[Message]:
        """Inference thread: called for every captured frame after tracking, whether or not the detector ran
        on it (``ctx.detected``); on a skipped frame the tracks are as the last detector run left them."""
        return []

    def idle(self, now: float) -> list[Message]:
        """Inference thread: called about twice a second when no frame came."""
        return []

    def connection_info(self) -> dict[str, Any]:
        """Merged into the ``connection`` message's data."""
        return {}

    def telemetry(self) -> dict[str, Any]:
        """Merged into telemetry under the feature's ``name``."""
        return {}

    def problems(self) -> list[str]:
        """Short phrases for ``/healthz`` (e.g. "microphone offline"); empty when healthy."""
        return []
