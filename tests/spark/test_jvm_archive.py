"""The local Spark JVM's class archive (``spark.jvm_archive``): recorded once under a name
of its own, moved into place only after its JVM exited normally, mapped by later
sessions; off with XRAYDESK_SPARK_JVM_ARCHIVE=0. No JVM here: the process is a stand-in
(tests/integration/test_spark_jvm_archive.py runs real ones)."""

from __future__ import annotations

import io

import pytest

from xraydesk.spark import jvm_archive
from xraydesk.spark.session import LOCAL_JVM_FLAGS, local_java_options

pytest.importorskip("pyspark")


class FakeJvm:
    """A gateway process that writes ``writes`` (if any) when its stdin is closed."""

    def __init__(self, code: int, writes=None) -> None:
        self.stdin = io.BytesIO()
        self.code, self.writes = code, writes

    def wait(self, timeout: float) -> int:
        assert self.stdin.closed, "the JVM only exits once its stdin ends"
        if self.writes is not None:
            self.writes.write_bytes(b"archive")
        return self.code


@pytest.fixture
def switched_on(monkeypatch):
    monkeypatch.setenv(jvm_archive.SWITCH, "1")


def test_the_first_session_records_and_a_later_one_maps(switched_on):
    flags, pending = jvm_archive.java_flags()
    assert pending is not None and f"-XX:ArchiveClassesAtExit={pending}" in flags
    assert jvm_archive.QUIET in flags
    jvm_archive._finish(FakeJvm(0, writes=pending), pending)
    final = jvm_archive.archive_path()
    assert final is not None and final.read_bytes() == b"archive"
    assert not pending.exists()
    flags, pending = jvm_archive.java_flags()
    assert pending is None and flags.startswith(f"-XX:SharedArchiveFile={final} ")


@pytest.mark.parametrize("code", [1, 143])
def test_an_archive_from_a_jvm_that_did_not_exit_normally_is_dropped(switched_on, code):
    _flags, pending = jvm_archive.java_flags()
    jvm_archive._finish(FakeJvm(code, writes=pending), pending)
    assert not pending.exists()
    final = jvm_archive.archive_path()
    assert final is not None and not final.exists()


def test_no_archive_written_leaves_nothing(switched_on):
    _flags, pending = jvm_archive.java_flags()
    jvm_archive._finish(FakeJvm(0), pending)
    final = jvm_archive.archive_path()
    assert final is not None and not final.exists()


def test_two_recording_sessions_write_different_files(switched_on):
    _a, first = jvm_archive.java_flags()
    _b, second = jvm_archive.java_flags()
    assert first != second


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv(jvm_archive.SWITCH, "0")
    assert jvm_archive.java_flags() == ("", None)


def test_the_callers_java_options_come_last():
    options = local_java_options("-Xmx2g", "-XX:SharedArchiveFile=/a.jsa")
    assert options == f"{LOCAL_JVM_FLAGS} -XX:SharedArchiveFile=/a.jsa -Xmx2g"
    assert local_java_options(None) == LOCAL_JVM_FLAGS


def test_the_session_stops_before_its_jvm_is_ended(switched_on):
    """Its accumulator server printed an EOFError traceback when the JVM went first."""
    order: list[str] = []

    class Stdin(io.BytesIO):
        def close(self) -> None:
            order.append("jvm ended")
            super().close()

    _flags, pending = jvm_archive.java_flags()
    jvm = FakeJvm(0, writes=pending)
    jvm.stdin = Stdin()
    session = type("Session", (), {"stop": lambda self: order.append("session stopped")})()
    jvm_archive._finish(jvm, pending, session)
    assert order == ["session stopped", "jvm ended"]
