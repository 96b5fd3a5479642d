"""The one place that creates OpenGL contexts.

Headless by default: EGL on whatever Mesa offers (llvmpipe on servers, GL 4.5 core). With
``window=True`` and an X display, a glfw window whose context draws to the screen too.
Shader sources are read from :func:`earsight.paths.shaders_dir`, one file per program (or
from ``$EARSIGHT_SHADERS`` for the programs found there).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import moderngl

from . import paths
from .errors import EarsightError

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
    glfw.swap_interval(0)  # the renderer paces itself; vsync would block the engine
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


# ---------------------------------------------------------------------------------------------
# Shader files

_STAGES = {
    "vertex_shader": "VERTEX_SHADER",
    "geometry_shader": "GEOMETRY_SHADER",
    "fragment_shader": "FRAGMENT_SHADER",
}


def shader_path(name: str) -> Path:
    """``<name>.glsl`` from ``$EARSIGHT_SHADERS`` when that folder has it, else the package's.

    The override lets a VJ live-edit a copy of one program (the renderer reloads it when its
    file changes) without touching the installed package.
    """
    override = os.environ.get("EARSIGHT_SHADERS")
    if override:
        path = Path(override) / f"{name}.glsl"
        if path.is_file():
            return path
    return paths.shaders_dir() / f"{name}.glsl"


def shader_sources(name: str) -> dict[str, str]:
    """Split ``shaders/<name>.glsl`` into its stages (moderngl-window style).

    The file holds every stage under ``#if defined VERTEX_SHADER ... #elif defined
    FRAGMENT_SHADER ... #endif``; each stage gets the file with its macro defined after the
    ``#version`` line. Returns keyword arguments for ``ctx.program``.
    """
    path = shader_path(name)
    if not path.is_file():
        raise EarsightError(f"gl: no shader {name!r} at {path}")
    text = path.read_text()
    match = re.search(r"^\s*#version[^\n]*\n", text, re.MULTILINE)
    if not match:
        text = f"#version {GL_VERSION} core\n" + text
        match = re.search(r"^\s*#version[^\n]*\n", text, re.MULTILINE)
    assert match is not None
    head, body = text[: match.end()], text[match.end() :]
    out = {}
    for arg, macro in _STAGES.items():
        if re.search(rf"defined\s*\(?\s*{macro}\b", body):
            # #line keeps compiler messages pointing at the file's own line numbers.
            line = head.count("\n") + 1
            out[arg] = f"{head}#define {macro} 1\n#line {line}\n{body}"
    if "vertex_shader" not in out:
        raise EarsightError(f"gl: shader {path} has no VERTEX_SHADER section")
    return out


def load_program(ctx: moderngl.Context, name: str) -> moderngl.Program:
    """Compile ``shaders/<name>.glsl``; raises EarsightError with the compiler's message."""
    try:
        src = shader_sources(name)
        return ctx.program(
            vertex_shader=src["vertex_shader"],
            geometry_shader=src.get("geometry_shader"),
            fragment_shader=src.get("fragment_shader"),
        )
    except moderngl.Error as err:
        raise EarsightError(f"gl: shader {name!r} does not compile: {err}") from err


def shader_mtime(name: str) -> float:
    try:
        return shader_path(name).stat().st_mtime
    except OSError:
        return 0.0
