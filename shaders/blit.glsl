#version 330 core
// Blit: draw a texture over the whole target, linearly filtered (scales low-resolution views up),
// with its alpha (an RGB texture reads as opaque), so blending can lay an overlay on top.

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle
out vec2 v_uv;

void main() {
    v_uv = 0.5 * in_position + 0.5;
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_uv;
uniform sampler2D u_image;
out vec4 f_color;

void main() {
    // Explicit level 0: no derivatives to compute per pixel (a software rasteriser pays for them).
    f_color = textureLod(u_image, v_uv, 0.0);
}

#endif
