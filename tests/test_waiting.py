"""The suite's one way of waiting for work done elsewhere (tests/support/waiting.py): it waits as
long as the work moves, gives up only when nothing moved for the stall period or at the ceiling,
and says what it waited for and what it saw."""

import itertools
import os
import signal
import subprocess
import sys

import pytest

from tests.support.waiting import Stalled, process_cpu, run, wait_for


def test_a_wait_that_keeps_moving_outlasts_its_stall_period():
    polls = itertools.count(1)
    moved = itertools.count()
    # Done at the 40th poll, 4 s or more after the start: far past the stall period, but the
    # measure moves at every poll.
    assert wait_for(
        lambda: next(polls) >= 40,
        what="the 40th poll",
        progress={"moved": lambda: next(moved)},
        stall=0.5,
    )


def test_a_wait_with_nothing_moving_fails_naming_what_and_the_last_progress():
    with pytest.raises(Stalled) as failure:
        wait_for(
            lambda: False,
            what="the worker to finish",
            progress={"runs finished": lambda: 3},
            stall=0.3,
        )
    message = str(failure.value)
    assert "the worker to finish" in message and "runs finished 3" in message
    assert "no progress for" in message and "stall limit" in message


def test_a_wait_that_moves_but_never_gets_there_ends_at_the_ceiling():
    moved = itertools.count()
    with pytest.raises(Stalled, match="still moving at the ceiling"):
        wait_for(
            lambda: False,
            what="nothing",
            progress={"moved": lambda: next(moved)},
            stall=60,
            ceiling=0.5,
        )


def test_errors_that_mean_not_yet_are_reported_and_others_end_the_wait():
    def refused():
        raise ConnectionRefusedError("not listening yet")

    def exited():
        raise RuntimeError("the server exited")

    with pytest.raises(Stalled, match="not listening yet"):
        wait_for(
            refused,
            what="a server to accept connections",
            progress={"log bytes": lambda: 0},
            stall=0.3,
            ignoring=OSError,
        )
    with pytest.raises(RuntimeError, match="exited"):
        wait_for(exited, what="a server", progress={"log bytes": lambda: 0}, ignoring=OSError)


def test_a_command_is_run_to_its_end_with_its_output():
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = run([sys.executable, "-c", script], what="a script", check=False, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert run(["cat"], what="cat", input=b"in").stdout == b"in"


def test_process_cpu_counts_the_time_a_process_group_spent():
    busy = "import time\nwhile time.process_time() < 1.2: pass\nprint(flush=True)\ntime.sleep(60)"
    child = subprocess.Popen(
        [sys.executable, "-c", busy], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        child.stdout.readline()  # 1.2 s of CPU spent, however long that took
        assert process_cpu(child.pid) >= 1
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert process_cpu(child.pid) == 0
