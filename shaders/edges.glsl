#version 330 core
// Edges: the layout's connections, counted per pixel (additively, into the fourth channel of
// the neuron index map) once per layout; neurons.glsl turns the count into a faint glow.

#if defined VERTEX_SHADER

in vec2 in_position;

uniform vec2 u_scale;

void main() {
    gl_Position = vec4(in_position * u_scale, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

out vec4 f_color;

void main() {
    f_color = vec4(0.0, 0.0, 0.0, 1.0);
}

#endif
