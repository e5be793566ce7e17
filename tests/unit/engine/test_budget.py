"""The byte budget of transfers in flight."""

from __future__ import annotations

import asyncio

from runctl.engine.budget import ByteBudget


def test_holds_within_the_limit_and_serves_waiters_in_order() -> None:
    async def go() -> tuple[list[str], int]:
        budget = ByteBudget(100)
        order: list[str] = []
        peak = 0

        async def job(name: str, size: int, seconds: float) -> None:
            nonlocal peak
            async with budget.hold(size):
                peak = max(peak, budget.limit - budget.free)
                order.append(name)
                await asyncio.sleep(seconds)

        # big waits for room; the small ones that come after it do not overtake it
        tasks = [asyncio.create_task(job("a", 60, 0.05))]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(job("big", 80, 0.01))]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(job(f"s{i}", 10, 0.01)) for i in range(3)]
        await asyncio.gather(*tasks)
        return order, peak

    order, peak = asyncio.run(go())
    assert order == ["a", "big", "s0", "s1", "s2"]
    assert peak <= 100


def test_a_request_above_the_limit_takes_the_whole_budget() -> None:
    async def go() -> int:
        budget = ByteBudget(50)
        async with budget.hold(10_000):
            return budget.free

    assert asyncio.run(go()) == 0
