"""training/idle_cores.py: a background training takes the second core only while the
rest of the machine leaves it idle, and gives it back at the first look that it does not."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "training"))

from idle_cores import IdleCores, machine_busy_seconds, own_cpu_seconds


class Machine:
    """A clock, the machine's busy CPU seconds and this process's own, moved by the test."""

    def __init__(self) -> None:
        self.now, self.busy, self.own = 0.0, 100.0, 10.0
        self.set_to: list[int] = []

    def run(self, seconds: float, own_cores: float, other_cores: float) -> None:
        self.now += seconds
        self.own += own_cores * seconds
        self.busy += (own_cores + other_cores) * seconds

    def cores(self, **kw) -> IdleCores:
        kw.setdefault("settle", 2)
        return IdleCores(
            cores=2,
            interval=15,
            busy=lambda: self.busy,
            own=lambda: self.own,
            clock=lambda: self.now,
            set_threads=self.set_to.append,
            **kw,
        )


def test_an_idle_machine_gets_every_core_after_settling_and_work_takes_one_back():
    m = Machine()
    idle = m.cores()
    assert idle.threads == 1
    m.run(5, own_cores=1.0, other_cores=0.0)
    assert idle.adjust() == 1 and m.set_to == []  # not a whole interval yet
    m.run(10, own_cores=1.0, other_cores=0.05)
    assert idle.adjust() == 1  # one idle look: not settled
    assert idle.others == pytest.approx(0.05 * 10 / 15)  # over the whole 15 s
    m.run(15, own_cores=1.0, other_cores=0.0)
    assert idle.adjust() == 2 and m.set_to == [2]
    m.run(15, own_cores=1.9, other_cores=0.0)  # its own two threads are not "others"
    assert idle.adjust() == 2 and m.set_to == [2]
    m.run(15, own_cores=0.4, other_cores=1.2)  # the session starts tests: back at once
    assert idle.adjust() == 1 and m.set_to == [2, 1]
    assert idle.others == pytest.approx(1.2)
    m.run(15, own_cores=1.0, other_cores=0.0)
    assert idle.adjust() == 1  # settles again before taking the core back
    m.run(15, own_cores=1.0, other_cores=0.1)
    assert idle.adjust() == 2 and m.set_to == [2, 1, 2]


def test_a_busy_look_restarts_the_settling():
    m = Machine()
    idle = m.cores(settle=3)
    for other in (0.0, 0.0, 0.5, 0.0, 0.0):
        m.run(15, own_cores=1.0, other_cores=other)
        assert idle.adjust() == 1
    m.run(15, own_cores=1.0, other_cores=0.0)
    assert idle.adjust() == 2


def test_without_proc_stat_or_from_another_thread_nothing_changes():
    m = Machine()
    blind = IdleCores(cores=2, busy=lambda: None, clock=lambda: m.now, set_threads=m.set_to.append)
    for _ in range(4):
        m.run(15, own_cores=1.0, other_cores=0.0)
        assert blind.adjust() == 1
    idle = m.cores()
    seen: list[int] = []
    for _ in range(3):
        m.run(15, own_cores=1.0, other_cores=0.0)
        worker = threading.Thread(target=lambda: seen.append(idle.adjust()))
        worker.start()
        worker.join()
    assert seen == [1, 1, 1] and m.set_to == []  # set_num_threads acts on its caller only
    one_core = IdleCores(cores=1, set_threads=m.set_to.append)
    assert one_core.adjust() == 1 and m.set_to == []


def test_the_machine_readings_are_real(tmp_path: Path):
    busy = machine_busy_seconds()
    if Path("/proc/stat").is_file():
        assert busy is not None and busy > 0
    assert own_cpu_seconds() > 0
    fake = tmp_path / "stat"
    fake.write_text("cpu  100 50 25 1000 7 5 5 9 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    ticks = os.sysconf("SC_CLK_TCK")
    assert machine_busy_seconds(fake) * ticks == pytest.approx(100 + 50 + 25 + 5 + 5)
    assert machine_busy_seconds(tmp_path / "missing") is None


def test_between_looks_nothing_is_read():
    """adjust runs at every training step: /proc/stat and the process times are read
    once an interval, not once a step."""
    m = Machine()
    reads: list[float] = []
    idle = IdleCores(
        cores=2,
        interval=15,
        busy=lambda: reads.append(m.now) or m.busy,
        own=lambda: m.own,
        clock=lambda: m.now,
        set_threads=m.set_to.append,
    )
    for _ in range(30):  # 30 steps of 1 s
        m.run(1, own_cores=1.0, other_cores=0.0)
        idle.adjust()
    assert reads == [0.0, 15.0, 30.0]
