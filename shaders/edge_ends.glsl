#version 330 core
// Edge ends map: rasterise every edge once (when the layout or the size changes), writing at
// each pixel it crosses where the activations of its two neurons live. Where edges overlap,
// the last one drawn stands for them all. Each frame, neurons.glsl lights an edge pixel by the
// dimmer of its two neurons, so the active paths glow at the cost of a texture read, however
// many edges there are.

#if defined VERTEX_SHADER

in vec2 in_position;  // an end of the edge, in layout space
in vec4 in_ends;      // activation texels (x, y) of the edge's two neurons (the same at both ends)

uniform vec2 u_scale;

flat out vec4 v_ends;

void main() {
    v_ends = in_ends;
    gl_Position = vec4(in_position * u_scale, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

flat in vec4 v_ends;

out vec4 f_ends;

void main() {
    f_ends = v_ends;
}

#endif
