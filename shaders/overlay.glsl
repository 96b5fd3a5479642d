#version 330 core
// Overlay: the layer labels and the legend (drawn into a texture on the CPU when the layout,
// the size or the colour map change), blended over the picture by their own alpha.

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle
out vec2 v_uv;

void main() {
    v_uv = 0.5 * in_position + 0.5;
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_uv;
uniform sampler2D u_image;  // RGBA, top row first (flipped here)
out vec4 f_color;

void main() {
    f_color = textureLod(u_image, vec2(v_uv.x, 1.0 - v_uv.y), 0.0);
}

#endif
