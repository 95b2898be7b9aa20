"""The one lock of the nightly job and `labrador train`: a live holder is named, a killed one frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labrador.validators.locks import Busy, PidLock

HOLD = ("import sys, time; from labrador.validators.locks import PidLock\n"
        "with PidLock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n")


def test_a_live_holder_is_named_and_a_killed_one_frees_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "nightly.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=f"pid {holder.pid}"), PidLock(lock, "another nightly run"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with PidLock(lock, "another nightly run"):  # the kernel released it with the process: no stale file blocks
        assert lock.read_text() == str(os.getpid())
    with PidLock(lock), pytest.raises(Busy):  # exclusive within one process too
        with PidLock(lock):
            pass
