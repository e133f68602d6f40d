"""The thread-count tuner and the allocator setting used during runs."""

from __future__ import annotations

from xraydesk.batch.memory import reuse_large_allocations
from xraydesk.batch.threads import Schedule, Tuner, schedule_candidates


def test_tuner_tries_each_candidate_in_turn_then_keeps_the_fastest():
    tuner = Tuner([2, 1], explore_every=10, samples_needed=3)
    speed = {2: 0.030, 1: 0.012}  # seconds per image: one thread wins on a busy machine
    tried = []
    for _ in range(6):
        threads = tuner.choose()
        tried.append(threads)
        tuner.record(threads, speed[threads])
    assert sorted(tried) == [1, 1, 1, 2, 2, 2]
    assert tried[:2] == [2, 1]  # alternating, so a change of load hits both alike
    assert tuner.best == 1
    picks = [tuner.choose() for _ in range(20)]
    assert picks.count(1) >= 18 and 2 in picks  # mostly the best, the other now and then


def test_tuner_follows_a_change_of_load():
    tuner = Tuner([2, 1], explore_every=4, samples_needed=1)
    for _ in range(4):
        t = tuner.choose()
        tuner.record(t, 0.03 if t == 2 else 0.012)
    assert tuner.best == 1
    for _ in range(40):  # the other process ended: two threads are now faster
        t = tuner.choose()
        tuner.record(t, 0.011 if t == 2 else 0.02)
    assert tuner.best == 2


def test_schedules_for_the_core_count():
    assert Tuner([Schedule(1, True)]).choose() == Schedule(1, True)
    assert schedule_candidates(1) == [Schedule(1, gated=False)]
    assert schedule_candidates(2) == [Schedule(2, gated=False), Schedule(1, gated=False)]
    # an exported runtime's own threads span every core: only the decode turns differ
    assert schedule_candidates(2, exported=True) == [Schedule(2, True), Schedule(2, False)]
    assert schedule_candidates(1, exported=True) == [Schedule(1, gated=False)]
    assert str(Schedule(2, True)) == "2 threads, decoding between batches"
    assert str(Schedule(1, False)) == "1 thread, decoding alongside"


def test_allocator_setting_nests():
    with reuse_large_allocations(), reuse_large_allocations():
        block = bytearray(64 << 20)  # a large block while mmap is off
        assert len(block) == 64 << 20
    block = bytearray(64 << 20)  # and after the defaults are back
    assert len(block) == 64 << 20


def test_slots_pause_and_resume_workers():
    import threading
    import time

    from xraydesk.batch.prefetch import Slots, ordered_map

    slots = Slots(0)  # closed: nothing may start
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        return i * i

    results: list[int] = []
    consumer = threading.Thread(
        target=lambda: results.extend(ordered_map(work, range(6), 2, 4, slots=slots))
    )
    consumer.start()
    time.sleep(0.3)
    assert started == []
    slots.set_limit(2)
    consumer.join(timeout=10)
    assert results == [0, 1, 4, 9, 16, 25]


def test_gated_schedule_gives_the_same_rows(tmp_path, test_classifier):
    from tests.batch_helpers import make_folder
    from xraydesk.batch.run import BatchOptions, BatchRun

    folder = make_folder(tmp_path / "study")
    runs = {}
    for gated in (False, True):
        options = BatchOptions(
            recursive=True, record=False, batch_size=3, schedule=Schedule(2, gated)
        )
        batch = BatchRun([folder], test_classifier, options)
        runs[gated] = [(r.path, r.prediction, r.error) for r in batch.rows()]
        assert batch.summary.schedule == str(Schedule(2, gated))
    assert runs[True] == runs[False] and len(runs[True]) == 8


def test_an_exported_runtime_tries_decoding_between_batches_and_alongside():
    from xraydesk.batch.batch_model import CpuShare
    from xraydesk.batch.prefetch import Slots

    slots = Slots(2)
    share = CpuShare("cpu", 2, slots, workers=2, batch_size=4, exported=True)
    seen = []
    try:
        for _ in range(6):
            share.run_batch(4, lambda: seen.append(slots.limit))
            assert slots.limit in (1, 2)  # between batches, decoding may go on
    finally:
        share.restore()
    assert seen[0] == 0  # gated first: no decoding while the runtime's threads run
    assert 1 in seen  # then alongside, on the one core the model leaves
    assert share.best in {"2 threads, decoding between batches", "2 threads, decoding alongside"}


def test_an_exported_runtime_counts_its_own_threads_not_torchs(monkeypatch):
    """``OMP_NUM_THREADS=1`` (the README's advice beside a training) sets torch's team to
    one thread; OpenVINO still runs on every core. Counting torch's one core left the run
    one decode thread and never the gated schedule (bench_batch: 0.72-0.74 of plain
    OpenVINO bf16)."""
    import torch

    from xraydesk.batch import threads
    from xraydesk.batch.run import default_workers, model_cores

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)

    class Runtime:
        def __init__(self, count: int) -> None:
            self.threads = count

    class Rechecked:  # runtime.recheck's wrapper: its fast half holds the threads
        def __init__(self, fast: Runtime) -> None:
            self.fast = fast

    class Loaded:
        def __init__(self, runtime) -> None:
            self.runtime = runtime

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert threads.cpu_cores() == 1  # torch's team
        assert model_cores(Loaded(Runtime(0))) == 2  # every core: the runtime's default
        assert model_cores(Loaded(Rechecked(Runtime(0)))) == 2
        assert model_cores(Loaded(Runtime(1))) == 1  # a runtime limited to one thread
        assert model_cores(Loaded(Rechecked(Runtime(1)))) == 1
        assert model_cores(Loaded(Runtime(8))) == 2  # never more than the process has
        assert model_cores(Loaded(None)) == 1  # the torch network: torch's team
        assert default_workers("cpu", model_cores(Loaded(Runtime(0)))) == 2
        gated = threads.schedule_candidates(model_cores(Loaded(Runtime(0))), exported=True)
        assert Schedule(2, gated=True) in gated
    finally:
        torch.set_num_threads(before)
