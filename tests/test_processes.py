"""The test suite's own promise: no test leaves a process running, pass or fail."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.processes import killing_leftovers, running_children


def test_a_process_left_running_by_a_failing_test_is_killed() -> None:
    with pytest.raises(AssertionError), killing_leftovers():  # noqa: PT012
        left = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        assert left.pid in running_children()
        raise AssertionError("the test failed half-way")
    assert left.wait(timeout=10) == -9
    assert left.pid not in running_children()


def test_a_process_started_before_is_left_alone() -> None:
    """A server of a fixture that outlives the test (module or session scope) keeps running."""
    earlier = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with killing_leftovers():
            pass
        assert earlier.poll() is None
    finally:
        earlier.kill()
        earlier.wait()
