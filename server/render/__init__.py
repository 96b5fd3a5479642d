"""Live pictures of an ear: its neural layout lit by activations, and two generative views.

The package, in the order the data flows:

- :mod:`.state`: :class:`RenderState`, what is drawn, computed from frames (pure numpy, no GL);
- :mod:`.context`: the one place that creates GL contexts (EGL headless, or a glfw window);
- :mod:`.gl`: shader programs (one ``.glsl`` file each, in ``shaders/``) and the GL objects;
- :mod:`.views`: one draw function per view (``layout``, ``hallucination``, ``features``);
- :mod:`.renderer`: :class:`Renderer`, the above composed, safe to call from several threads;
- :mod:`.video`: a video of a file (``earsight render FILE``) and the renderer's benchmark.
"""

from .renderer import Renderer
from .state import COLORMAPS, HIGHLIGHT, VECTORS, VIEWS, RenderState, colormap_texture_data
from .video import add_arguments, bench_render, read_audio, render_file, run

__all__ = [
    "COLORMAPS",
    "HIGHLIGHT",
    "VECTORS",
    "VIEWS",
    "RenderState",
    "Renderer",
    "add_arguments",
    "bench_render",
    "colormap_texture_data",
    "read_audio",
    "render_file",
    "run",
]
