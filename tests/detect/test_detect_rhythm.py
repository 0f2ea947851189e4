"""``detection.rhythm``: is a recording's clock right? Found with the real homes: the quietest hours of a resident
who works (van Kasteren A and C) are the hours away, not the night, so hours begun at the front door are no night."""

from __future__ import annotations

from detection.rhythm import RhythmTally

HOUR = 3_600_000


def _worker(tally: RhythmTally, shift_h: int) -> None:
    """Ten days: up 07:00, out by the front door 08:30-17:30, home until 23:00; a toilet visit at 03:00."""
    for d in range(10):
        base = d * 24 * HOUR + shift_h * HOUR

        def add(h: float, door: bool = False, base: int = base) -> None:
            tally.add("h", base + int(h * HOUR), door)

        add(3.0)
        for m in range(7 * 6, 8 * 6 + 3):
            add(m / 6)
        add(8.5, door=True)
        for m in range(int(17.5 * 6), 23 * 6):
            add(m / 6)


def test_a_resident_out_all_day_is_not_taken_for_a_misplaced_night() -> None:
    tally = RhythmTally()
    _worker(tally, 0)
    assert tally.suggestions(0.0) == {}
    assert max(tally.away_share("h")[9:17]) > 0.8 and max(tally.away_share("h")[0:7]) == 0.0


def test_the_same_resident_stamped_eight_hours_off_is_reported_with_the_offset_that_fits() -> None:
    tally = RhythmTally()
    _worker(tally, 8)  # local wall time stamped as UTC, replayed at UTC+8
    fit = tally.suggestions(8.0)
    assert set(fit) == {"h"} and abs(fit["h"] - 0.0) <= 1.0
