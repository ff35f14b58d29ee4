"""The virtual clock: timers in order, jumps only when no tracked I/O is in flight."""

from __future__ import annotations

import asyncio

from mcscomm.endpoints.clock import RealClock, VirtualClock


async def test_timers_fire_in_deadline_order_and_time_jumps() -> None:
    fired: list[tuple[str, float]] = []
    async with VirtualClock() as clock:
        clock.call_at(1800.0, lambda: fired.append(("late", clock.now())))
        clock.call_at(0.25, lambda: fired.append(("early", clock.now())))
        cancelled = clock.call_at(5.0, lambda: fired.append(("cancelled", clock.now())))
        cancelled.cancel()
        await asyncio.wait_for(clock.sleep(3600.0), 5.0)
    assert fired == [("early", 0.25), ("late", 1800.0)]
    assert clock.now() == 3600.0


async def test_clock_waits_while_bytes_are_in_flight() -> None:
    link = (("127.0.0.1", 1), ("127.0.0.1", 2))
    fired: list[float] = []
    async with VirtualClock() as clock:
        clock.sent(link, 100)
        clock.call_at(10.0, lambda: fired.append(clock.now()))
        for _ in range(20):
            await asyncio.sleep(0)
        assert fired == [] and clock.now() == 0.0  # 100 bytes not yet read by the peer
        clock.received(link, 60)
        for _ in range(20):
            await asyncio.sleep(0)
        assert fired == []
        clock.received(link, 40)
        for _ in range(20):
            await asyncio.sleep(0)
        assert fired == [10.0]


async def test_forgotten_link_and_busy_sections() -> None:
    link = ("a", "b")
    fired: list[float] = []
    async with VirtualClock() as clock:
        clock.sent(link, 5)
        clock.call_at(1.0, lambda: fired.append(clock.now()))
        with clock.busy():
            clock.forget(link)  # the reader is gone: its bytes will never be read
            for _ in range(20):
                await asyncio.sleep(0)
            assert fired == []  # still busy
        for _ in range(20):
            await asyncio.sleep(0)
        assert fired == [1.0]


async def test_untracked_reads_do_not_hold_the_clock() -> None:
    async with VirtualClock() as clock:
        clock.received(("x", "y"), 1000)  # an outside peer's bytes: never announced
        assert clock.idle
        await asyncio.wait_for(clock.sleep(60.0), 5.0)
        assert clock.now() == 60.0


async def test_a_failing_callback_does_not_stop_time() -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    async with VirtualClock() as clock:
        clock.call_at(1.0, boom)
        await asyncio.wait_for(clock.sleep(2.0), 5.0)
        assert clock.now() == 2.0


async def test_real_clock_is_the_loop_time() -> None:
    clock = RealClock()
    loop = asyncio.get_running_loop()
    assert abs(clock.now() - loop.time()) < 0.5
    done = asyncio.Event()
    clock.call_at(clock.now() + 0.01, done.set)
    await asyncio.wait_for(done.wait(), 2.0)
    assert not clock.virtual
