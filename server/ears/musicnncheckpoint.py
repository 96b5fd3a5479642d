"""musicnn's MTT checkpoint, read without TensorFlow and converted once to torch layout (safetensors).

The ``musicnn`` wheel ships TensorFlow checkpoints; :mod:`earsight.ears.tfcheckpoint` reads their
tensors; :func:`converted_weights` maps them onto :class:`~earsight.ears.musicnn.MusiCNN`'s
parameter names and caches the result under :func:`earsight.paths.cache_dir`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import NotFound
from ..paths import cache_dir
from .tfcheckpoint import read_checkpoint
from .weights import reading

CONVERSION = 2
"""Bump when the cached torch layout changes, so old caches are not reused."""


def _tf_to_torch(tf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the checkpoint's variables (``tf.layers`` names, in creation order) onto MusiCNN's buffers.

    Kernels: conv2d ``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``; the mid-end convs span all
    channels in TensorFlow's width axis, so ``(7, channels, 1, out)`` -> conv1d ``(out, channels, 7)``;
    dense ``(in, out)`` -> ``(out, in)``.
    """

    def bn(prefix: str, index: int) -> dict[str, np.ndarray]:
        scope = "batch_normalization" + (f"_{index}" if index else "")
        return {
            f"{prefix}.{k}": tf[f"{scope}/{k}"]
            for k in ("gamma", "beta", "moving_mean", "moving_variance")
        }

    def conv(i: int) -> str:
        return "conv2d" + (f"_{i}" if i else "")

    out: dict[str, np.ndarray] = {}
    out |= bn("frontend.bn_input", 0)
    for j in range(2):  # conv2d, conv2d_1 with batch_normalization_1, _2
        out[f"frontend.timbral.{j}.conv.weight"] = tf[f"{conv(j)}/kernel"].transpose(3, 2, 0, 1)
        out[f"frontend.timbral.{j}.conv.bias"] = tf[f"{conv(j)}/bias"]
        out |= bn(f"frontend.timbral.{j}.bn", 1 + j)
    for j in range(3):  # conv2d_2.._4 with batch_normalization_3.._5
        out[f"frontend.temporal.{j}.conv.weight"] = tf[f"{conv(2 + j)}/kernel"].transpose(
            3, 2, 0, 1
        )
        out[f"frontend.temporal.{j}.conv.bias"] = tf[f"{conv(2 + j)}/bias"]
        out |= bn(f"frontend.temporal.{j}.bn", 3 + j)
    for j in range(3):  # conv2d_5.._7 with batch_normalization_6.._8
        out[f"midend.convs.{j}.weight"] = tf[f"{conv(5 + j)}/kernel"][:, :, 0, :].transpose(2, 1, 0)
        out[f"midend.convs.{j}.bias"] = tf[f"{conv(5 + j)}/bias"]
        out |= bn(f"midend.bns.{j}", 6 + j)
    out |= bn("backend.bn_pool", 9)
    out["backend.dense.weight"] = tf["dense/kernel"].T
    out["backend.dense.bias"] = tf["dense/bias"]
    out |= bn("backend.bn_dense", 10)
    out["backend.out.weight"] = tf["dense_1/kernel"].T
    out["backend.out.bias"] = tf["dense_1/bias"]
    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in out.items()}


def checkpoint_prefix(model: str = "MTT_musicnn") -> Path:
    """Where the ``musicnn`` wheel keeps a model's TensorFlow checkpoint (its prefix ends in ``/``)."""
    import importlib.util

    spec = importlib.util.find_spec("musicnn")  # locate without importing (it imports TensorFlow)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("the musicnn ear needs the `musicnn` wheel (pip install --no-deps musicnn)")
    prefix = Path(next(iter(spec.submodule_search_locations))) / model
    if not (prefix / ".index").exists():
        raise NotFound(f"no checkpoint at {prefix}/.index")
    return prefix


def converted_weights(prefix: Path | None = None) -> Path:
    """The safetensors file with torch-layout weights, converting the checkpoint on first use.

    The file name carries a digest of the checkpoint's index (which holds every tensor's CRC), so a
    changed checkpoint is converted again.
    """
    from safetensors.torch import save_file

    prefix = prefix or checkpoint_prefix()
    digest = hashlib.sha256((prefix / ".index").read_bytes()).hexdigest()[:12]
    path = cache_dir() / f"musicnn-mtt-v{CONVERSION}-{digest}.safetensors"
    if not path.exists():
        with reading(prefix / ".index", "musicnn's checkpoint", "pip install --force-reinstall --no-deps musicnn"):
            tensors = _tf_to_torch(read_checkpoint(prefix, verify=True))
        # Write beside the target, then rename: a concurrent loader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"source": str(prefix), "format": "earsight musicnn"})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path
