"""The API fuzzer in the suite: schemathesis, driven by the OpenAPI document, against the live panel on its real
broker (embedded Mosquitto with dynamic security, simulated nodes online), as an admin and as an officer.

Every check is on (server errors, undocumented status codes, answers that break their schema, valid input
refused, invalid input accepted, auth ignored, unsupported methods…); the two content exceptions are in
schemathesis.toml with their reason. The example count is modest here (``FUZZ_EXAMPLES``, default 8);
``make fuzz`` runs it long.
"""

from __future__ import annotations

import os
import re

import pytest
from conftest import require_mosquitto
from fuzzing import LivePanel, run_schemathesis

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto, pytest.mark.timeout(3600)]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
#: Operations that end the caller's own session (API logout, revoking tokens, changing users — the fuzzer would
#: revoke or demote the very login it fuzzes with). They get their own run, as a login of their own, last.
ACCOUNT_OPS = r"^/(users/\{username\}|auth/token|auth/tokens.*|auth/password)$"


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    require_mosquitto()
    p = LivePanel(tmp_path_factory.mktemp("fuzz")).start()
    yield p
    p.stop()


def _failures(output: str) -> str:
    """The failure part of schemathesis' console report (what the assertion shows)."""
    start = output.find("FAILURES")
    text = output[start:] if start >= 0 else output[-6000:]
    return re.sub(r"\n{3,}", "\n\n", text)[:12000]


@pytest.mark.parametrize("user", ["admin", "officer"])
def test_api_fuzz(panel, user, tmp_path):
    code, report, output = run_schemathesis(panel, user, max_examples=EXAMPLES, report=tmp_path / "report.json",
                                            extra=["--exclude-path-regex", ACCOUNT_OPS])
    assert code == 0, _failures(output)
    assert "Tested: 0" not in output, output[-3000:]


def test_api_fuzz_account_operations(panel, tmp_path):
    code, report, output = run_schemathesis(panel, "keeper", max_examples=EXAMPLES, report=tmp_path / "report.json",
                                            extra=["--include-path-regex", ACCOUNT_OPS])
    assert code == 0, _failures(output)
