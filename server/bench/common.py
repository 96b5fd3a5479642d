"""What the sections share: a server's status asked from a socket of its own, a JACK server when none runs."""

from __future__ import annotations

import socket
from typing import Any

from ..errors import EarsightError


def status_of(server: tuple[str, int]) -> dict[str, object]:
    """/ear/status as a dict, asked from a socket of its own (the bench's others are busy)."""
    from pythonosc.osc_packet import OscPacket

    from ..osc import message

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        for _ in range(10):
            sock.sendto(message("/ear/status"), server)
            try:
                data, _ = sock.recvfrom(65536)
            except TimeoutError:
                continue
            for m in OscPacket(data).messages:
                if m.message.address == "/ear/status.reply":
                    p = list(m.message.params)
                    return dict(zip(p[::2], p[1::2], strict=True))
    raise EarsightError("no /ear/status.reply")


def ensure_jack(sample_rate: int, block: int) -> Any:
    from ..audio import jack as jackmod

    if jackmod.running():
        return None
    return jackmod.start_dummy(sample_rate, block)


def show(title: str, rows: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in rows.items():
        print(f"  {key:38s} {value:.4g}" if isinstance(value, float) else f"  {key:38s} {value}")
