"""The message lifecycle: one state machine, and the postback code each transition reports.

```
accepted ──▶ media-ready ──▶ submitting ──▶ submitted ──▶ delivered (N102)
   │              │              │   ▲          ├──────▶ rejected  (E102)
   │              │              │   └ reconciled after a crash
   └──────────────┴──────────────┴──────────────┴──────▶ failed (E101, E011…) / expired (N103)
```
When the MMS cannot go as MMS (the handset or carrier cannot take it) and the message allows it, it
falls back to one SMS with a link to a hosted page of its content:
```
media-ready / submitting / submitted ──▶ fallback ──▶ sms-submitting ──▶ sms-submitted ──▶ sms-delivered (N202)
                                            │              │  ▲                └───────▶ sms-failed (E202)
                                            │              │  └ not taken (throttled, unbound): again later
                                            └──────────────┴──────────────────────────▶ sms-failed / expired (N103)
```
``media-ready`` reports N013 when content was adapted; ``submitted`` reports N101. ``submitting`` is
recorded before the carrier is called, so a crash between the call and its record is reconciled
instead of sending twice; a carrier that certainly did not take the message returns it to
``media-ready``. Final states never change. The store applies a transition only from one of its
source states (a compare-and-set), which makes every transition safe to repeat.
"""

from __future__ import annotations

from mmsgate.core.codes import EventCode, MessageState

S = MessageState

FINAL: frozenset[MessageState] = frozenset(
    {S.DELIVERED, S.REJECTED, S.FAILED, S.EXPIRED, S.SMS_DELIVERED, S.SMS_FAILED}
)

NEXT: dict[MessageState, frozenset[MessageState]] = {
    S.ACCEPTED: frozenset({S.MEDIA_READY, S.FAILED, S.EXPIRED}),
    S.MEDIA_READY: frozenset({S.SUBMITTING, S.REJECTED, S.FAILED, S.EXPIRED, S.FALLBACK}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.MEDIA_READY, S.REJECTED, S.FAILED, S.EXPIRED, S.FALLBACK}),
    S.SUBMITTED: frozenset({S.DELIVERED, S.REJECTED, S.FAILED, S.EXPIRED, S.FALLBACK}),
    S.FALLBACK: frozenset({S.SMS_SUBMITTING, S.SMS_FAILED, S.FAILED, S.EXPIRED}),
    S.SMS_SUBMITTING: frozenset({S.SMS_SUBMITTED, S.FALLBACK, S.SMS_FAILED, S.FAILED, S.EXPIRED}),
    S.SMS_SUBMITTED: frozenset({S.SMS_DELIVERED, S.SMS_FAILED, S.FAILED, S.EXPIRED}),
    **{final: frozenset() for final in FINAL},
}


def sources(target: MessageState) -> tuple[MessageState, ...]:
    """The states a message may be in for ``target`` to be reached from it."""
    return _SOURCES[target]


_SOURCES: dict[MessageState, tuple[MessageState, ...]] = {
    target: tuple(state for state, nexts in NEXT.items() if target in nexts) for target in MessageState
}

OUTCOME: dict[MessageState, EventCode] = {
    S.SUBMITTED: EventCode.SENT,
    S.DELIVERED: EventCode.DELIVERED,
    S.REJECTED: EventCode.REJECTED,
    S.FAILED: EventCode.FAILED,
    S.EXPIRED: EventCode.EXPIRED,
    S.SMS_DELIVERED: EventCode.SMS_DELIVERED,
    S.SMS_FAILED: EventCode.SMS_FAILED,
}
"""The usual code of reaching a state (a failure may carry a more precise one, such as E011)."""


SMS_STATES: frozenset[MessageState] = frozenset(
    {S.FALLBACK, S.SMS_SUBMITTING, S.SMS_SUBMITTED, S.SMS_DELIVERED, S.SMS_FAILED}
)
"""States of a message that fell back to SMS: its postbacks say ``sent-as: SMS``."""


def is_final(state: MessageState) -> bool:
    return state in FINAL
