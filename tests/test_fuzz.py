"""20,000 hostile datagrams at 10,000/s against `earsight serve` as users run it: never deaf, nothing restarted.

(`earsight bench --only fuzz` sends a million.)
"""

from __future__ import annotations

import pytest

from earsight.bench.fuzz import Fuzz, fuzz_server
from earsight.cli import running_server


def test_the_fuzzer_draws_every_kind_and_repeats_by_seed() -> None:
    a, b = Fuzz(7, now=1.8e9), Fuzz(7, now=1.8e9)
    drawn = [a() for _ in range(500)]
    assert drawn == [b() for _ in range(500)]
    assert b"" in drawn and any(d.startswith(b"#bundle") for d in drawn) and any(b"\xff\xfe" in d for d in drawn)


@pytest.mark.slow
def test_twenty_thousand_hostile_datagrams_every_ping_answered() -> None:
    with running_server("--no-view", "--backend", "manual", "--input", "test", "--test", "sine") as served:
        figures = fuzz_server(served.address, served.process.pid, 20000, rate=10000.0)
        assert served.process.poll() is None, "the server died"
    print(figures)
    assert figures["pings answered (fraction)"] == 1.0, figures
    assert figures["thread restarts"] == 0 and figures["errors (datagrams or handlers that raised)"] == 0, figures
    assert figures["malformed (server's count)"] > 1000  # the hostile ones were seen as such
    # Rate-limited answers: a forged sender gets at most 100 + 50/s of them, not one per datagram.
    seconds = figures["datagrams sent"] / figures["rate sent (/s)"] + 6.0  # sending, then waiting for pongs
    assert figures["/ear/fail answers received"] <= 100 + 50 * seconds, figures
    # Memory stays flat: nothing a datagram holds is kept (a margin for the allocator's own growth).
    assert figures["server RSS after (MB)"] <= 1.10 * figures["server RSS before (MB)"], figures
