#version 330 core
// Neurons: every pixel looks up which neuron covers it (the index map from neuron_ids.glsl,
// whose fourth channel holds how many edges pass there) and that neuron's colour and light (computed on the CPU: a software rasteriser pays for
// every colour-map lookup per pixel), and paints a disc that grows with the light. Between
// neurons the glow (glow.py) shows each region's mean light, the edges show faintly, and an
// edge whose two neurons are lit (the edge ends map from edge_ends.glsl) shines with the dimmer
// one's colour. Two to five texture reads per pixel, whatever the number of neurons and edges:
// a software rasteriser pays far more per triangle than per texel, so nothing here is drawn
// as geometry per frame.

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle
out vec2 v_uv;

void main() {
    v_uv = 0.5 * in_position + 0.5;
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_uv;

uniform sampler2D u_ids;          // RGBA16F: (neuron texel x, y, distance from its centre in radii (2: none), edges here)
uniform sampler2D u_neurons;      // RGBA8: each neuron's colour, and its light in alpha
uniform sampler2D u_ends;         // RGBA16F: neuron texels (x, y) of the two ends of an edge here
uniform sampler2D u_glow;         // RGBA8, an eighth of the size: the glow's colour
uniform vec3 u_background;
uniform vec3 u_edge_color;        // colour of one edge; overlapping edges add up
uniform float u_path_strength;    // how bright an edge between two fully lit neurons shines (0: never)
uniform bool u_glow_on;

out vec4 f_color;

void main() {
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    vec4 id = texelFetch(u_ids, pixel, 0);
    vec3 background = u_background + u_edge_color * min(id.w, 2.0);
    if (u_glow_on) {
        background += textureLod(u_glow, v_uv, 0.0).rgb;
    }
    if (id.w > 0.5 && u_path_strength > 0.0) {
        vec4 ends = texelFetch(u_ends, pixel, 0);
        vec4 a = texelFetch(u_neurons, ivec2(ends.xy), 0);
        vec4 b = texelFetch(u_neurons, ivec2(ends.zw), 0);
        vec4 dim = a.a < b.a ? a : b;
        background += dim.rgb * (u_path_strength * dim.a);
    }
    if (id.z > 1.5) {
        f_color = vec4(background, 1.0);
        return;
    }
    vec4 n = texelFetch(u_neurons, ivec2(id.xy), 0);
    // Silent neurons are small dots, loud ones fill their cell; the rim fades for smooth edges.
    float radius = 0.55 + 0.45 * n.a;
    float cover = clamp((radius - id.z) * 6.0, 0.0, 1.0);
    f_color = vec4(mix(background, n.rgb, cover), 1.0);
}

#endif
