"""The one place that creates OpenGL contexts.

Headless by default: EGL on whatever Mesa offers (llvmpipe on servers, GL 4.5 core). With
``window=True`` and an X display, a glfw window whose context draws to the screen too.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import moderngl

from ..errors import EarsightError

log = logging.getLogger(__name__)

GL_VERSION = 330


def create_context(*, window: bool = False, size: tuple[int, int] = (1280, 720), title: str = "earsight") -> moderngl.Context:
    """A moderngl context; ``ctx.extra["window"]`` holds the glfw window when there is one.

    ``window=True`` needs an X display (``DISPLAY``); without one we log why and stay
    headless, since a server must not die because nobody is looking.
    """
    if window and os.environ.get("DISPLAY"):
        return _window_context(size, title)
    if window:
        log.warning("gl: window requested but no DISPLAY is set; rendering headless")
    try:
        ctx = moderngl.create_standalone_context(require=GL_VERSION, backend="egl")  # type: ignore[arg-type]
    except Exception as err:  # moderngl raises plain Exception when EGL is missing
        raise EarsightError(f"cannot create a headless GL context through EGL: {err} (install libegl1 libegl-mesa0 libgl1-mesa-dri)") from err
    ctx.extra = {"window": None}
    return ctx


def _window_context(size: tuple[int, int], title: str) -> moderngl.Context:
    import glfw

    if not glfw.init():
        raise EarsightError("gl: glfw could not initialise the display")
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
    handle = glfw.create_window(size[0], size[1], title, None, None)
    if not handle:
        glfw.terminate()
        raise EarsightError("gl: glfw could not open a window")
    glfw.make_context_current(handle)
    glfw.swap_interval(0)  # the renderer paces itself; vsync would block the display thread
    ctx = moderngl.create_context(require=GL_VERSION)
    ctx.extra = {"window": handle}
    return ctx


def window_of(ctx: moderngl.Context) -> Any:
    """The glfw window of ``ctx``, or None when headless."""
    extra = ctx.extra if isinstance(ctx.extra, dict) else {}
    return extra.get("window")


def present(ctx: moderngl.Context, framebuffer: moderngl.Framebuffer) -> bool:
    """Show ``framebuffer`` in the window (if any); False once the user has closed it."""
    handle = window_of(ctx)
    if handle is None:
        return True
    import glfw

    ctx.copy_framebuffer(ctx.screen, framebuffer)
    glfw.swap_buffers(handle)
    glfw.poll_events()
    return not glfw.window_should_close(handle)


def release_context(ctx: moderngl.Context) -> None:
    """Release ``ctx`` and close its window."""
    handle = window_of(ctx)
    ctx.release()
    if handle is not None:
        import glfw

        glfw.destroy_window(handle)
        glfw.terminate()


@functools.cache
def _gl_finish() -> Any:
    """libGL's ``glFinish`` through ctypes, or None where there is no libGL to open."""
    import ctypes
    import ctypes.util

    for name in ("libGL.so.1", ctypes.util.find_library("GL")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name).glFinish
        except (OSError, AttributeError):
            continue
    return None


def finish(ctx: moderngl.Context) -> None:
    """Wait for the GPU (llvmpipe's threads) to finish drawing, without holding the GIL.

    moderngl's calls keep the GIL; a read-back waits tens of milliseconds for the rasteriser inside
    one, and every other thread of the server (the ear, the OSC dispatcher) waits with it. A ctypes
    call releases the GIL, so the frame's wait happens here and the read after it only copies."""
    gl_finish = _gl_finish()
    if gl_finish is None:
        ctx.finish()
    else:
        gl_finish()
