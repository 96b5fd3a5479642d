#version 330 core
// The glow alone: the layout view's pass for tiles that hold no neuron and no edge (gl.py's
// find_tiles), where neurons.glsl would pay for its index-map read and find nothing.

#if defined VERTEX_SHADER

in vec2 in_position;  // a tile's corner, in clip space
out vec2 v_uv;

void main() {
    v_uv = 0.5 * in_position + 0.5;
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_uv;

uniform sampler2D u_glow;  // RGBA8, an eighth of the size: the glow's colour
uniform vec3 u_background;

out vec4 f_color;

void main() {
    f_color = vec4(u_background + textureLod(u_glow, v_uv, 0.0).rgb, 1.0);
}

#endif
