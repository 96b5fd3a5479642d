#version 330 core
// Markers: the selected neurons drawn again on top, as larger discs in the highlight colour
// with a dark rim, so they stand out on bright and dark neighbours alike. Drawn twice, rims then
// centres, so where markers overlap no rim covers another marker's centre.

#if defined VERTEX_SHADER

in vec2 in_position;  // neuron position in layout space (same for its 4 corners)
in vec2 in_corner;    // this vertex's corner of the quad, in [-1, 1]^2

uniform vec2 u_scale;   // layout space -> clip space
uniform vec2 u_radius;  // marker radius in clip space

out vec2 v_corner;

void main() {
    v_corner = in_corner;
    gl_Position = vec4(in_position * u_scale + in_corner * u_radius, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_corner;

uniform vec3 u_highlight;
uniform bool u_rims;  // the first pass: the whole discs, dark; the second: their centres

out vec4 f_color;

void main() {
    float r = length(v_corner);
    if (r > (u_rims ? 1.0 : 0.75)) discard;
    f_color = vec4(u_rims ? vec3(0.0) : u_highlight, 1.0);
}

#endif
