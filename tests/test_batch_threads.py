"""The thread-count tuner and the allocator setting used during runs."""

from __future__ import annotations

from xraydesk.batch.memory import reuse_large_allocations
from xraydesk.batch.threads import ThreadTuner, thread_candidates


def test_tuner_tries_each_candidate_in_turn_then_keeps_the_fastest():
    tuner = ThreadTuner([2, 1], explore_every=10, samples_needed=3)
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
    tuner = ThreadTuner([2, 1], explore_every=4, samples_needed=1)
    for _ in range(4):
        t = tuner.choose()
        tuner.record(t, 0.03 if t == 2 else 0.012)
    assert tuner.best == 1
    for _ in range(40):  # the other process ended: two threads are now faster
        t = tuner.choose()
        tuner.record(t, 0.011 if t == 2 else 0.02)
    assert tuner.best == 2


def test_single_candidate_and_defaults():
    assert ThreadTuner([1]).choose() == 1
    candidates = thread_candidates()
    assert candidates[0] >= 1 and len(candidates) in (1, 2)


def test_allocator_setting_nests():
    with reuse_large_allocations(), reuse_large_allocations():
        block = bytearray(64 << 20)  # a large block while mmap is off
        assert len(block) == 64 << 20
    block = bytearray(64 << 20)  # and after the defaults are back
    assert len(block) == 64 << 20
