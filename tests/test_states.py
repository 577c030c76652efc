"""The state machines of broadcaster/states.py: one table each, one way to move, documented as they are."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from broadcaster import emergency
from broadcaster.states import (
    APPROVAL,
    COMMAND,
    MACHINES,
    PRESENCE,
    SCHEDULE,
    ApprovalState,
    CommandState,
    InvalidTransition,
)

ROOT = Path(__file__).resolve().parent.parent


def test_the_architecture_document_shows_every_table_as_it_is():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = doc.split("<!-- state-machines:start -->")[1].split("<!-- state-machines:end -->")[0]
    assert block.strip() == "\n\n".join(m.markdown() for m in MACHINES)
    for status in emergency.AlertStatus:  # the alert's table, next to its recovery
        assert f"`{status.value}`" in doc


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_event_in_every_state_moves_by_the_table_or_is_refused(machine):
    for state in machine.states:
        for event in machine.events():
            row = SimpleNamespace(value=state.value)
            if (state, event) in machine.table:
                assert machine.move(row, "value", event) == machine.table[(state, event)]
                assert row.value == machine.table[(state, event)].value
            else:
                with pytest.raises(InvalidTransition) as refused:
                    machine.move(row, "value", event)
                assert refused.value.status == 409 and refused.value.code == "invalid_transition"
                assert row.value == state.value  # a refusal leaves the row as it was


def test_every_state_is_reachable_from_the_initial_one():
    for machine in MACHINES:
        seen, todo = {machine.initial}, [machine.initial]
        while todo:
            state = todo.pop()
            for (src, _), dst in machine.table.items():
                if src == state and dst not in seen:
                    seen.add(dst)
                    todo.append(dst)
        assert seen == set(machine.states), machine.name


def test_the_rules_people_rely_on():
    assert APPROVAL.after(None, "submit") == ApprovalState.SUBMITTED  # a row without a value is a draft
    assert not APPROVAL.allows("draft", "publish")  # only approved content goes out
    assert not APPROVAL.allows("rejected", "void")  # a change to rejected text keeps it rejected
    for final in (CommandState.OK, CommandState.ERROR, CommandState.REJECTED):  # the first outcome stays
        assert not any(COMMAND.allows(final, e) for e in COMMAND.events())
    assert COMMAND.after("timed_out", "ack_ok") == CommandState.OK  # a late answer still counts
    assert COMMAND.sources("expire") == ("pending",)
    assert SCHEDULE.after("cancelled", "cancel").value == "cancelled"
    assert PRESENCE.state(None).value == "unknown"


#: (model attribute) → the machine that alone may set it
GUARDED = {"approval": APPROVAL, "presence": PRESENCE}


def test_no_module_sets_a_guarded_state_column_itself():
    """``ann.approval = …``, ``node.presence = …``, ``sched.status = "cancelled"``, ``record.status = …``
    outside broadcaster/states.py would be a second way to move a machine."""
    offenders = []
    for path in sorted((ROOT / "broadcaster").rglob("*.py")):
        if path.name == "states.py" or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else [])
            for target in targets:
                for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if not isinstance(t, ast.Attribute):
                        continue
                    if t.attr in GUARDED:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{t.attr}")
                    if t.attr == "status" and re.search(r"\b(sched|schedule|record|command|cmd)\b",
                                                        ast.unparse(t.value)):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(t)}")
    assert not offenders, offenders
