"""RecentKeys: hits only for recorded keys, expiry, bounded size."""

from webhooks.recent import RecentKeys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_added_keys_are_seen_per_provider() -> None:
    keys = RecentKeys()
    keys.add("stripe", "evt_1")
    assert keys.seen("stripe", "evt_1")
    assert not keys.seen("paynow", "evt_1")
    assert not keys.seen("stripe", "evt_2")


def test_keys_expire() -> None:
    clock = Clock()
    keys = RecentKeys(ttl=60, clock=clock)
    keys.add("stripe", "evt_1")
    clock.now += 60
    assert keys.seen("stripe", "evt_1")
    clock.now += 1
    assert not keys.seen("stripe", "evt_1")
    assert len(keys) == 0


def test_size_is_bounded_oldest_first() -> None:
    keys = RecentKeys(capacity=3)
    for i in range(5):
        keys.add("stripe", f"evt_{i}")
    assert len(keys) == 3
    assert not keys.seen("stripe", "evt_0")
    assert not keys.seen("stripe", "evt_1")
    assert keys.seen("stripe", "evt_4")
