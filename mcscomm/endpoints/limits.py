"""Resource limits of the endpoints: what one peer may cost us before we drop it."""

from __future__ import annotations

from dataclasses import dataclass

#: Largest V2GTP payload we accept by default. The -20 schemas bound every element; the largest
#: legitimate documents (CertificateInstallationRes with 3 sub-certificates, a 1024-entry schedule,
#: a 2048-entry EVPowerProfile) stay well below this. Reference stacks cap far lower (libiso15118
#: 2 KiB, EvseV2G 8 KiB; facts §1.3), which rejects real schedules, so we are more generous.
DEFAULT_MAX_PAYLOAD = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-endpoint resource limits.

    ``max_connections``: concurrent sessions an SECC serves; one more is closed at once.
    ``max_payload``: largest V2GTP payload (bytes) a peer may announce; bounds the receive buffer.
    ``idle_timeout``: seconds (endpoint clock) without a byte from the peer before we drop it; set
    above every protocol timer (60 s sequence timeout, facts §5.1) so the session's own timers act
    first and this only catches peers the session cannot (slowloris, half-open sockets).
    ``handshake_timeout``: seconds (wall clock) a TLS handshake may take.
    ``write_buffer_high``: bytes queued towards a peer that does not read before we stop reading
    from it (back-pressure instead of unbounded memory).
    """

    max_connections: int = 1024
    max_payload: int = DEFAULT_MAX_PAYLOAD
    idle_timeout: float = 75.0
    handshake_timeout: float = 10.0
    write_buffer_high: int = 256 * 1024

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.max_payload < 64:
            raise ValueError("max_payload must be at least 64 bytes")
        if self.idle_timeout <= 0 or self.handshake_timeout <= 0:
            raise ValueError("timeouts must be positive")
