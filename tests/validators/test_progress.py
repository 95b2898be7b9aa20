"""One progress display: a line at least every 30 s (done/total, rate, time left) when stderr is not a terminal,
quiet for a step shorter than that, nothing with --quiet; the interval comes from LABRADOR_PROGRESS_EVERY_S."""

from __future__ import annotations

import io

from labrador.validators.progress import EVERY_ENV, Progress, every_s, line


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_line_says_what_done_of_total_rate_and_time_left():
    assert line("training night", 10, 40, 20.0) == "training night: 10/40 (25%), 0.50/s, ETA 1:00"
    assert line("training night", 40, 40, 80.0, "loss 1.2") == \
        "training night: 40/40 (100%), 0.50/s, took 1:20, loss 1.2"
    assert line("checking leaves", 500, None, 2.0) == "checking leaves: 500, 250/s"
    assert line("training night", 30, 40, 10.0, start=20) == "training night: 30/40 (75%), 1.00/s, ETA 0:10"  # resumed


def test_lines_come_every_interval_and_once_at_the_end_of_a_long_step():
    out, clock = io.StringIO(), Clock()
    with Progress("sampling", 6, live=False, stream=out, every=30, clock=clock) as p:
        for i in range(1, 7):
            clock.t += 12
            p.update(i)
    lines = out.getvalue().splitlines()
    assert lines == ["sampling: 3/6 (50%), 0.08/s, ETA 0:36", "sampling: 6/6 (100%), 0.08/s, took 1:12"]
    out = io.StringIO()
    with Progress("sampling", 6, live=False, stream=out, every=30, clock=clock) as p:
        clock.t += 31
        p.update(2)
        clock.t += 5
        p.update(6)  # the end comes between two lines: said once more at the end
    assert out.getvalue().splitlines() == ["sampling: 2/6 (33%), 0.06/s, ETA 1:02",
                                           "sampling: 6/6 (100%), 0.17/s, took 0:36"]


def test_a_short_step_and_a_quiet_one_print_nothing():
    out, clock = io.StringIO(), Clock()
    with Progress("checking leaves", 3, live=False, stream=out, every=30, clock=clock) as p:
        clock.t += 1
        p.update(3)
    with Progress("training", 3, show=False, stream=out, every=0, clock=clock) as p:
        p.update(3)
    assert out.getvalue() == ""


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(EVERY_ENV, "0")
    assert every_s() == 0.0
    monkeypatch.setenv(EVERY_ENV, "soon")
    assert every_s() == 30.0
    monkeypatch.delenv(EVERY_ENV)
    assert every_s() == 30.0
