#version 330 core
// Neuron index map: rasterise every neuron once, as a quad that writes where its activation is and the
// distance from its centre. The depth test keeps, at each pixel, the neuron whose centre is
// nearest. The layout never moves, so this runs when the layout or the size changes, and
// each frame only looks pixels up (see neurons.glsl): per-frame cost no longer grows with
// the number of neurons.

#if defined VERTEX_SHADER

in vec2 in_position;  // neuron position in layout space [-1, 1]^2 (same for its 4 corners)
in vec2 in_corner;    // this vertex's corner of the quad, in [-1, 1]^2
in float in_index;    // the neuron's index (exact in a float up to 2^24)

uniform vec2 u_scale;    // layout space -> clip space
uniform vec2 u_radius;   // largest neuron radius in clip space
uniform int u_row_width; // width of the activation texture

out vec2 v_corner;
flat out vec2 v_texel;

void main() {
    v_corner = in_corner;
    // Where this neuron's activation lives, so the per-pixel pass needs no integer division
    // (which a software rasteriser cannot vectorise).
    int i = int(in_index + 0.5);
    v_texel = vec2(float(i % u_row_width), float(i / u_row_width));
    gl_Position = vec4(in_position * u_scale + in_corner * u_radius, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_corner;
flat in vec2 v_texel;

out vec4 f_id;  // (activation texel x, y, distance from the centre in radii, -); cleared to distance 2: none

void main() {
    float r = length(v_corner);
    if (r > 1.0) discard;
    gl_FragDepth = r;
    f_id = vec4(v_texel, r, 0.0);  // the fourth channel (edges) is masked off
}

#endif
