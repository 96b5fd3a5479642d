"""Streams read what the ear declares: the pitch stream decodes through the ear's pitch hook."""

from __future__ import annotations

import numpy as np
import pytest

from earsight.ears import cpc, crepe
from earsight.ears.base import Ear
from earsight.errors import BadRequest
from earsight.features import STREAMS, FrameContext, Selection


def context(ear: Ear, audio: np.ndarray) -> FrameContext:
    """The last frame of ``audio`` as the ear worker would publish it."""
    frames = ear.analyse(audio)
    frame = {name: values[-1] for name, values in frames.items()}
    return FrameContext(ear, frame, audio[-ear.hop :], 0.0, Selection(ear.layer_names[0]))


def test_pitch_stream_sends_hz_and_confidence_of_a_sine() -> None:
    ear = crepe.tiny()
    audio = (0.5 * np.sin(2 * np.pi * 440 * np.arange(4000) / 16000)).astype(np.float32)
    spec = STREAMS["pitch"]
    assert spec.check(ear) is None
    assert spec.names(ear, Selection("pitch")) == ["hz", "confidence"]
    hz, confidence = spec.compute(context(ear, audio))
    assert abs(1200 * np.log2(hz / 440)) < 10 and confidence > 0.7


def test_an_ear_without_pitch_says_so() -> None:
    ear = cpc.load()
    assert ear.pitch_layer is None
    assert "does not hear pitch" in str(STREAMS["pitch"].check(ear))
    with pytest.raises(BadRequest, match="does not hear pitch"):
        STREAMS["pitch"].compute(context(ear, np.zeros(4 * ear.hop, np.float32)))
