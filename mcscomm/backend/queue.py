"""The transaction-event queue: nothing lost, nothing reordered, across CSMS outages (pure).

OCPP 2.1 (E04/E13 "transaction-related messages"): a station queues TransactionEvent messages
while offline and delivers them in generation order once the link is back, flagging those made
offline with ``offline=true``; ``seqNo`` counts the messages of one transaction without gaps.
:class:`TxEventQueue` holds them; the station's sender takes the head, sends it, and pops it only
when the CSMS acknowledged it, so a message in flight when the link drops is sent again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One TransactionEvent payload (snake_case keys) with its bookkeeping."""

    transaction_id: str
    seq_no: int
    event_type: str
    payload: dict[str, Any]
    queued_at: float


@dataclass(slots=True)
class TxEventQueue:
    """FIFO of transaction events with per-transaction ``seqNo`` (from 0, no gaps)."""

    max_len: int = 100_000
    _q: deque[QueuedEvent] = field(default_factory=deque)
    _seq: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    sent: int = 0

    def __len__(self) -> int:
        return len(self._q)

    def push(
        self, transaction_id: str, event_type: str, payload: dict[str, Any], now: float
    ) -> QueuedEvent:
        """Queue an event; assigns its seqNo (and writes it into the payload)."""
        seq = self._seq.get(transaction_id, 0)
        self._seq[transaction_id] = seq + 1
        body = dict(payload, seq_no=seq)
        ev = QueuedEvent(transaction_id, seq, event_type, body, now)
        if len(self._q) >= self.max_len:
            # Bounded memory: drop the oldest *Updated* event (meter samples), never a
            # Started/Ended, so transactions still open and close at the CSMS.
            for i, old in enumerate(self._q):
                if old.event_type == "Updated":
                    del self._q[i]
                    self.dropped += 1
                    break
        self._q.append(ev)
        if event_type == "Ended":
            self._seq.pop(transaction_id, None)
        return ev

    def head(self) -> QueuedEvent | None:
        """The next event to send (None: empty)."""
        return self._q[0] if self._q else None

    def ack(self, ev: QueuedEvent) -> None:
        """The CSMS acknowledged ``ev`` (must be the head)."""
        if self._q and self._q[0] is ev:
            self._q.popleft()
            self.sent += 1

    def pending(self) -> list[QueuedEvent]:
        return list(self._q)
