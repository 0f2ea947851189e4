"""Deduplication by (site, device, seq): copies dropped, out-of-order accepted, reboots accepted, memory bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.dedupe import STREAM_SEQ_BASE, STREAM_SLOTS, Deduplicator, stream_seq


def accept_all(d: Deduplicator, seqs: list[int], device: str = "mat1") -> list[int]:
    out = []
    for s in seqs:
        if not d.is_duplicate("h1", device, s):
            d.remember("h1", device, s)
            out.append(s)
    return out


def test_copies_are_dropped_and_out_of_order_messages_kept() -> None:
    d = Deduplicator(window=16)
    assert accept_all(d, [1, 2, 4, 3, 2, 4, 5, 1]) == [1, 2, 4, 3, 5]


def test_devices_and_sites_are_independent() -> None:
    d = Deduplicator()
    d.remember("h1", "mat1", 7)
    assert d.is_duplicate("h1", "mat1", 7)
    assert not d.is_duplicate("h1", "band1", 7)
    assert not d.is_duplicate("h2", "mat1", 7)


def test_a_big_backward_jump_is_a_reboot_and_the_window_restarts() -> None:
    d = Deduplicator(window=8)
    assert accept_all(d, [100, 101, 1, 2, 2, 3]) == [100, 101, 1, 2, 3]
    assert not d.is_duplicate("h1", "mat1", 101)  # forgotten with the old counter


def test_a_big_forward_jump_clears_the_window() -> None:
    d = Deduplicator(window=8)
    assert accept_all(d, [1, 2, 1_000, 999, 2]) == [1, 2, 1_000, 999, 2]


def test_memory_is_bounded_by_least_recently_seen_device() -> None:
    d = Deduplicator(max_devices=2)
    d.remember("h1", "a", 1)
    d.remember("h1", "b", 1)
    d.remember("h1", "a", 2)  # a is now the most recent
    d.remember("h1", "c", 1)  # evicts b
    assert len(d) == 2
    assert d.is_duplicate("h1", "a", 1) and d.is_duplicate("h1", "c", 1)
    assert not d.is_duplicate("h1", "b", 1)


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=200))
def test_within_the_window_exactly_the_first_copy_is_kept(seqs: list[int]) -> None:
    d = Deduplicator(window=256)  # wider than every value: no reboot heuristics apply
    assert accept_all(d, seqs) == list(dict.fromkeys(seqs))


@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=100), st.integers(min_value=1, max_value=64))
def test_the_newest_message_is_never_dropped_and_nothing_raises(seqs: list[int], window: int) -> None:
    d = Deduplicator(window=window)
    high = -1
    for s in seqs:
        if s > high:
            assert not d.is_duplicate("h1", "x", s)
        if not d.is_duplicate("h1", "x", s):
            d.remember("h1", "x", s)
        high = max(high, s)


def test_stream_numbered_readings_are_copies_at_or_below_the_devices_latest_message_however_far_behind() -> None:
    """A Z2M device in the cluster is numbered by stream position: its messages are far apart (other homes share
    the stream), so a copy is far behind the latest, yet still a copy; a new message is never one."""
    d = Deduplicator(window=16)
    latest = [stream_seq(9_000, 0), stream_seq(9_000, 1)]
    for seq in [stream_seq(100, 0), *latest, stream_seq(5_000, 0)]:  # the restore's seeding, in any order
        d.remember("h1", "0xa4c1", seq)
    assert d.is_duplicate("h1", "0xa4c1", stream_seq(100, 0))  # far behind: a copy, not a reboot
    assert d.is_duplicate("h1", "0xa4c1", stream_seq(9_000, 2))  # another reading from the latest message
    assert not d.is_duplicate("h1", "0xa4c1", stream_seq(9_001, 0))
    # A message's readings are all checked before any is remembered (the service does both per batch).
    message = [stream_seq(9_001, 0), stream_seq(9_001, 1)]
    assert [d.is_duplicate("h1", "0xa4c1", seq) for seq in message] == [False, False]
    for seq in message:
        d.remember("h1", "0xa4c1", seq)
    assert [d.is_duplicate("h1", "0xa4c1", seq) for seq in message] == [True, True]


def test_a_device_moving_between_its_own_numbers_and_stream_numbers_keeps_its_readings() -> None:
    d = Deduplicator(window=16)
    d.remember("h1", "0xa4c1", 7)  # numbered by a counter (an embedded backend)
    assert not d.is_duplicate("h1", "0xa4c1", stream_seq(1, 0))  # now numbered by stream position
    d.remember("h1", "0xa4c1", stream_seq(1, 0))
    assert not d.is_duplicate("h1", "0xa4c1", 3)  # and back: a counter far behind is a restart, as before
    d.remember("h1", "0xa4c1", 3)
    assert d.is_duplicate("h1", "0xa4c1", 3)


def test_stream_numbers_stay_above_the_contracts_and_within_int64() -> None:
    assert stream_seq(0, 0) == STREAM_SEQ_BASE > 2**53
    assert stream_seq(2**50, STREAM_SLOTS - 1) < 2**63
