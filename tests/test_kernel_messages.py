"""Kernel clients that do not miss a message (flashtrade_lib.kernel_messages)."""

from __future__ import annotations

import pytest

from flashtrade_lib import kernel_messages


def test_a_missed_message_wake_up_costs_one_poll_slice_not_the_cells_timeout(monkeypatch) -> None:
    """nbclient waits for a cell's reply in one poll as long as the cell's timeout; when pyzmq misses the
    wake-up of a message already there, that poll only ends with the timeout (jupyter/nbclient#312).
    Sliced, the next poll takes the message; a real timeout still ends at its deadline with Empty."""
    import asyncio
    import time
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    polls: list[float | None] = []

    async def misses_the_first_wake_up(self, timeout=None):
        polls.append(timeout)
        if len(polls) == 1 or self == "silent":
            await asyncio.sleep(timeout)
            raise Empty
        return {"msg_type": "execute_reply"}

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", misses_the_first_wake_up)  # restored after the test
    monkeypatch.setattr(kernel_messages, "POLL_SLICE_S", 0.1)
    kernel_messages.messages_polled_in_slices()
    kernel_messages.messages_polled_in_slices()  # a second call does not slice the slices

    start = time.monotonic()
    reply = asyncio.run(asyncio.wait_for(AsyncZMQSocketChannel.get_msg("kernel", timeout=900), 5))
    assert reply == {"msg_type": "execute_reply"} and time.monotonic() - start < 1
    assert polls == [0.1, 0.1]

    polls.clear()
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(AsyncZMQSocketChannel.get_msg("silent", timeout=0.35))
    assert 0.35 <= time.monotonic() - start < 1.5
    assert max(polls) <= 0.1 and len(polls) >= 4
