"""The MQTT connection as a state machine: what the broker said last, and what the bridge does about it.

Pure logic (no paho, no clock of its own). :class:`ConnectionState` names every state the link can be in,
its value is the ``status`` reported in telemetry, and :data:`TRANSITIONS` lists the moves that exist; a
move outside them raises :class:`IllegalTransition`. :class:`Connection` is fed what the network said
(accepted, refused, unreachable, lost) and returns what to do: announce the broker offline (once per
outage) or back online, retry bad credentials after :data:`AUTH_RETRY_SECONDS` instead of every second,
and warn once when the broker keeps kicking this client off (another client has its id: see
:mod:`edge.transports.mqtt.kickloop`). Once shutdown began, what the network says changes nothing.
"""

from __future__ import annotations

import dataclasses
import enum

from edge.transports.mqtt.kickloop import KickLoopDetector

AUTH_RETRY_SECONDS = 60
AUTH_FAILURES = frozenset({"Bad user name or password", "Not authorized", "Bad username or password"})


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"         # first attempt, or the retry after bad credentials
    CONNECTED = "connected"
    REFUSED = "refused"               # the broker answered no (not about credentials); paho retries with backoff
    AUTH_FAILED = "auth_failed"       # bad credentials: paho's retries stopped, one more after AUTH_RETRY_SECONDS
    UNREACHABLE = "unreachable"       # no answer at all; paho retries with backoff
    DISCONNECTED = "disconnected"     # lost after it was up; paho reconnects with backoff
    KICKED = "kicked_repeatedly"      # lost again right after connecting: another client has our id
    CLOSING = "closing"               # shutdown began: events in flight are awaited, nothing new is sent
    CLOSED = "closed"


S = ConnectionState
_ATTEMPT = {S.CONNECTED, S.REFUSED, S.AUTH_FAILED, S.UNREACHABLE, S.CLOSING}  # how an attempt can end
# The retry after bad credentials starts a new attempt from whatever the answers already queued on the loop
# when paho's loop stopped left behind (a late refusal, even a late success).
_RETRY = {S.CONNECTING}
TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    S.CONNECTING: frozenset(_ATTEMPT),
    S.CONNECTED: frozenset({S.DISCONNECTED, S.KICKED, S.CLOSING} | _RETRY),
    S.REFUSED: frozenset(_ATTEMPT | _RETRY),
    # an attempt under way may still be answered; no answer at all keeps the credentials verdict
    S.AUTH_FAILED: frozenset({S.CONNECTED, S.REFUSED, S.CLOSING} | _RETRY),
    S.UNREACHABLE: frozenset(_ATTEMPT | _RETRY),
    S.DISCONNECTED: frozenset(_ATTEMPT | _RETRY),
    S.KICKED: frozenset(_ATTEMPT | _RETRY),
    S.CLOSING: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A move the connection cannot make (a bug in whoever fed it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """What to do after the broker refused the connection."""

    auth: bool           # bad credentials
    retry_later: bool    # stop paho's retries and try once more after AUTH_RETRY_SECONDS
    report_offline: bool  # first sign of this outage: publish ``broker_offline``


@dataclasses.dataclass(frozen=True, slots=True)
class Loss:
    """What to do after a connection that was up went down."""

    warning: str | None  # the duplicate-client-id warning, at most once per re-warn period
    report_offline: bool


class Connection:
    """The link's state and its counters (loop thread only); times are ``time.monotonic()`` seconds."""

    def __init__(self, client_id: str) -> None:
        self.state = ConnectionState.CONNECTING
        self.kick_loop = KickLoopDetector(client_id)
        self.connects = 0
        self.disconnects = 0
        self._outage_reported = False  # broker_offline was published and broker_online not yet

    def move(self, to: ConnectionState) -> None:
        """Go to ``to``; staying where it is is always allowed, anything not in TRANSITIONS raises."""
        if to is not self.state and to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"MQTT connection cannot go from {self.state.value} to {to.value}")
        self.state = to

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    @property
    def auth_failed(self) -> bool:
        return self.state is ConnectionState.AUTH_FAILED

    @property
    def closing(self) -> bool:
        return self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED)

    # --- what the network said ---
    def accepted(self, now: float) -> bool | None:
        """The broker accepted us. None once closing (nothing to do); else True when an outage was reported
        and is now over (publish ``broker_online``)."""
        if self.closing:
            return None
        self.move(ConnectionState.CONNECTED)
        self.connects += 1
        self.kick_loop.connected(now)
        back, self._outage_reported = self._outage_reported, False
        return back

    def refused(self, reason: str) -> Refusal | None:
        """The broker answered the connect with a failure ``reason``; None once closing."""
        if self.closing:
            return None
        auth = reason in AUTH_FAILURES
        # Refusals that arrive before paho's retries stop share the one retry already scheduled.
        retry = auth and self.state is not ConnectionState.AUTH_FAILED
        self.move(ConnectionState.AUTH_FAILED if auth else ConnectionState.REFUSED)
        return Refusal(auth, retry, self._report())

    def unreachable(self) -> bool | None:
        """No broker answered; True when this is the first sign of an outage. None once closing."""
        if self.closing:
            return None
        if self.state is not ConnectionState.AUTH_FAILED:  # the credentials verdict stands until a broker answers
            self.move(ConnectionState.UNREACHABLE)
        return self._report()

    def lost(self, now: float, reason: str) -> Loss | None:
        """The link went down; None when it was not up (paho also says so after a refusal) or once closing."""
        if not self.connected:
            return None
        self.disconnects += 1
        warning = self.kick_loop.disconnected(now, reason)
        self.move(ConnectionState.KICKED if warning else ConnectionState.DISCONNECTED)
        return Loss(warning, self._report())

    def retry_due(self) -> bool:
        """The wait after bad credentials is over: True when a new attempt should start."""
        if self.closing:
            return False
        self.move(ConnectionState.CONNECTING)
        return True

    # --- shutdown ---
    def close(self) -> bool:
        """Shutdown began; True when the link was up (events in flight may still be acknowledged)."""
        was_up = self.connected
        if not self.closing:
            self.move(ConnectionState.CLOSING)
        return was_up

    def closed(self) -> None:
        self.close()
        self.move(ConnectionState.CLOSED)

    def _report(self) -> bool:
        first, self._outage_reported = not self._outage_reported, True
        return first
