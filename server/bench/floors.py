"""The latency floors the block-rate streams are measured against: bare pyo processes on JACK.

``python -m earsight.bench.floors <mode> <port>`` runs pyo on the running JACK server as client
``earsight-floor-<mode>`` and sends the peak of every block of its input to 127.0.0.1:<port>:
- ``c``: pyo's own C-side OSC sender (``OscSend`` on ``PeakAmp``): the floor of the machine.
- ``callback``: pyo's per-block Python callback reading the peak and sending it with a socket.
It prints ``ready`` when its input port exists and runs until killed.
"""

from __future__ import annotations

import os
import socket
import sys
import time


def main(mode: str, port: int) -> None:
    os.environ.setdefault("PYO_GUI_WX", "0")
    import pyo

    server = pyo.Server(sr=48000, nchnls=1, ichnls=1, buffersize=256, duplex=1, audio="jack",
                        jackname=f"earsight-floor-{mode}")
    server.setVerbosity(1)
    server.deactivateMidi()
    server.boot()
    peak = pyo.PeakAmp(pyo.Input(chnl=0))
    if mode == "c":
        sender = pyo.OscSend(peak, port=port, address="/peak", host="127.0.0.1")
        assert sender is not None
    else:
        from ..osc import message

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def callback() -> None:
            sock.sendto(message("/peak", float(peak.get())), ("127.0.0.1", port))

        server.setCallback(callback)
    server.start()
    print("ready", flush=True)
    while True:
        time.sleep(1.0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
