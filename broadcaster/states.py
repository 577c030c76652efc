"""The panel's state machines: an enum of states and one table of transitions each, and one function that
moves a row along it (issue 16).

* announcement approval — ``Announcement.approval`` (:data:`APPROVAL`, workflow in broadcaster/approval.py)
* schedule — ``Schedule.status`` (:data:`SCHEDULE`; "deleted" is the separate, undoable ``archived_at``)
* command — ``CommandRecord.status`` (:data:`COMMAND`)
* node presence — ``Node.presence`` (:data:`PRESENCE`, debounced in broadcaster/fleet.py)

The alert's machine (``Alert.status``) lives with the emergencies (broadcaster/emergency.py, ``AlertStatus`` and
``TRANSITIONS``) because its one transitional state, ``releasing``, is recovered there at start.

None of these machines has a transitional state that a stop could leave behind: every change is one column
set inside the transaction that does the work. A command is ``pending`` until its node answers or it expires
(``fleet.expire_commands``, run before any list or report of commands reads them), so none is seen stuck.

``docs/architecture.md`` shows each table as :func:`markdown` renders it; a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from broadcaster.errors import ServiceError

S = TypeVar("S", bound=StrEnum)


class InvalidTransition(ServiceError):
    """An event the current state does not allow (409 ``invalid_transition``)."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__("invalid_transition", f"cannot {event} a {machine} that is {state}", machine, 409)
        self.state = state
        self.event = event


@dataclass(frozen=True)
class Machine(Generic[S]):
    """States, the one table ``(state, event) → state``, and the state a missing value means."""

    name: str
    states: type[S]
    table: Mapping[tuple[S, str], S]
    initial: S

    def state(self, value: str | None) -> S:
        """The stored value as a state (None or empty: the initial state)."""
        return self.states(value or self.initial)

    def allows(self, current: str | None, event: str) -> bool:
        return (self.state(current), event) in self.table

    def after(self, current: str | None, event: str) -> S:
        """The state after ``event`` in ``current``; :class:`InvalidTransition` when the table has no such row."""
        state = self.state(current)
        try:
            return self.table[(state, event)]
        except KeyError:
            raise InvalidTransition(self.name, state.value, event) from None

    def move(self, row: Any, attr: str, event: str) -> S:
        """The one way a row's state changes: ``row.<attr>`` set to the state after ``event``; returns it."""
        new = self.after(getattr(row, attr), event)
        setattr(row, attr, new.value)
        return new

    def sources(self, event: str) -> tuple[str, ...]:
        """The stored values from which ``event`` is allowed (for a bulk ``UPDATE … WHERE state IN``)."""
        return tuple(state.value for (state, ev) in self.table if ev == event)

    def events(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ev for (_, ev) in self.table))

    def markdown(self) -> str:
        """The table as docs/architecture.md shows it: a row per state, a column per event."""
        events = self.events()
        lines = [f"| {self.name} state | " + " | ".join(events) + " |",
                 "|---" * (len(events) + 1) + "|"]
        for state in self.states:
            cells = [f"→ {self.table[(state, ev)].value}" if (state, ev) in self.table else "—" for ev in events]
            lines.append(f"| `{state.value}` | " + " | ".join(cells) + " |")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ announcement approval
class ApprovalState(StrEnum):
    DRAFT = "draft"  # being written; nobody is asked
    SUBMITTED = "submitted"  # waits for a leader ("chờ duyệt"), also after a change voided an approval
    APPROVED = "approved"  # a leader approved this exact audio: it may enter plans
    REJECTED = "rejected"  # sent back with a comment
    PUBLISHED = "published"  # approved, and a plan carrying it went out to a node


_A = ApprovalState
APPROVAL: Machine[ApprovalState] = Machine("announcement", ApprovalState, {
    (_A.DRAFT, "submit"): _A.SUBMITTED,
    (_A.REJECTED, "submit"): _A.SUBMITTED,
    (_A.DRAFT, "approve"): _A.APPROVED,  # a leader approves her own text directly
    (_A.SUBMITTED, "approve"): _A.APPROVED,
    (_A.REJECTED, "approve"): _A.APPROVED,
    (_A.SUBMITTED, "reject"): _A.REJECTED,
    (_A.APPROVED, "reject"): _A.REJECTED,
    (_A.PUBLISHED, "reject"): _A.REJECTED,
    (_A.APPROVED, "publish"): _A.PUBLISHED,
    # the approved audio changed (text, voice, a new recording): back to the leaders
    (_A.SUBMITTED, "void"): _A.SUBMITTED,
    (_A.APPROVED, "void"): _A.SUBMITTED,
    (_A.PUBLISHED, "void"): _A.SUBMITTED,
}, _A.DRAFT)


# ------------------------------------------------------------------------------------ schedule
class ScheduleState(StrEnum):
    ACTIVE = "active"  # its airings enter the plans (when its content is approved)
    CANCELLED = "cancelled"  # taken out of every plan; kept for the record


SCHEDULE: Machine[ScheduleState] = Machine("schedule", ScheduleState, {
    (ScheduleState.ACTIVE, "cancel"): ScheduleState.CANCELLED,
    (ScheduleState.CANCELLED, "cancel"): ScheduleState.CANCELLED,  # cancelling twice is the same answer
}, ScheduleState.ACTIVE)


# ------------------------------------------------------------------------------------ command
class CommandState(StrEnum):
    PENDING = "pending"  # signed and published; no answer yet
    OK = "ok"  # the node did it
    ERROR = "error"  # the node tried and failed
    REJECTED = "rejected"  # the node refused it (signature, expiry, an alert outranks it…)
    TIMED_OUT = "timed_out"  # no answer before it expired; a late answer still counts


_C = CommandState
COMMAND: Machine[CommandState] = Machine("command", CommandState, {
    (_C.PENDING, "ack_ok"): _C.OK,
    (_C.PENDING, "ack_error"): _C.ERROR,
    (_C.PENDING, "ack_rejected"): _C.REJECTED,
    (_C.PENDING, "expire"): _C.TIMED_OUT,
    (_C.TIMED_OUT, "ack_ok"): _C.OK,
    (_C.TIMED_OUT, "ack_error"): _C.ERROR,
    (_C.TIMED_OUT, "ack_rejected"): _C.REJECTED,
    # ok, error and rejected are final: the first outcome is kept (docs/protocol.md §9)
}, _C.PENDING)


def ack_event(status: str) -> str:
    """The command event of a node's ack status (``ok`` / ``error`` / ``rejected``)."""
    return f"ack_{status}"


# ------------------------------------------------------------------------------------ node presence
class PresenceState(StrEnum):
    UNKNOWN = "unknown"  # never reported (stored as NULL)
    ONLINE = "online"
    OFFLINE = "offline"


_P = PresenceState
#: Events are what the node's reports settled to after the debounce (``fleet.settle``): a flapping link does
#: not move presence; the first report sets it at once.
PRESENCE: Machine[PresenceState] = Machine("presence", PresenceState, {
    (_P.UNKNOWN, "seen_online"): _P.ONLINE,
    (_P.UNKNOWN, "seen_offline"): _P.OFFLINE,
    (_P.ONLINE, "seen_offline"): _P.OFFLINE,
    (_P.OFFLINE, "seen_online"): _P.ONLINE,
}, _P.UNKNOWN)

MACHINES: tuple[Machine[Any], ...] = (APPROVAL, SCHEDULE, COMMAND, PRESENCE)
