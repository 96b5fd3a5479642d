"""Audio in and out: the pyo process, what it listens to, the rings between processes, files.

- :mod:`.process`: pyo in a process of its own (:class:`AudioEngine`); the only module that imports pyo,
  and only inside that process.
- :mod:`.sources`: :class:`Source` (demo, device, file, test signal, silence), checked at the boundary.
- :mod:`.ring`: lock-free shared-memory rings of audio; :mod:`.shared`: int64 counters and one-shot arrays.
- :mod:`.jack`: JACK on a headless box (a dummy server, an xrun counter).
- :mod:`.io`: THE place that reads, writes and resamples audio files (soundfile, ffmpeg, soxr).

``import earsight.audio`` imports neither pyo nor JACK.
"""

from .process import BACKENDS, STAT_FIELDS, AudioConfig, AudioEngine
from .ring import Ring
from .shared import Controls, Counters, SharedArray
from .sources import (
    SOURCE_KINDS,
    TEST_SIGNALS,
    Source,
    demo_files,
    pyo_example_sound,
    pyo_folder,
    validate_source,
)

__all__ = [
    "BACKENDS",
    "SOURCE_KINDS",
    "STAT_FIELDS",
    "TEST_SIGNALS",
    "AudioConfig",
    "AudioEngine",
    "Controls",
    "Counters",
    "Ring",
    "SharedArray",
    "Source",
    "demo_files",
    "pyo_example_sound",
    "pyo_folder",
    "validate_source",
]
