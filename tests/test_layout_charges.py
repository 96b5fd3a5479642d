"""layout.charges: the probe signal, activation statistics and the charges they give."""

from __future__ import annotations

import numpy as np

from earsight.ears.base import Ear
from earsight.layout.charges import activation_stats, charges_from_variance, probe_signal


def test_charges_follow_activation_variance() -> None:
    variance = np.array([0.0, 1.0, 4.0, 9.0, 2.0, 2.0], np.float32)
    layer = np.array([0, 0, 0, 0, 1, 1])
    q = charges_from_variance(variance, layer)
    assert np.all(np.diff(q[:4]) > 0)
    assert q[4] == q[5]
    assert q.min() >= 0.3 and q.max() <= 3.0


def test_probe_signal_is_fixed_by_its_seed() -> None:
    a = probe_signal(16000, 1.5)
    assert a.shape == (24000,) and a.dtype == np.float32
    assert np.isclose(np.abs(a).max(), 0.5)
    assert np.array_equal(a, probe_signal(16000, 1.5))
    assert not np.array_equal(a, probe_signal(16000, 1.5, seed=1))


def test_activation_stats_cover_every_neuron_and_layer(crepe: Ear) -> None:
    variance, ranges = activation_stats(crepe, seconds=1.0)
    assert variance.shape == (sum(layer.size for layer in crepe.layers),)
    assert ranges.shape == (len(crepe.layers), 2)
    assert np.all(variance >= 0) and np.all(ranges[:, 1] > ranges[:, 0])
