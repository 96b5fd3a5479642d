#version 330 core
// Neurons: every pixel looks up which neuron covers it, how many edges pass there and the two
// ends of an edge there (one texel of the packed map, pack_maps.glsl), and that neuron's colour
// and light (computed on the CPU: a software rasteriser pays for every colour-map lookup per
// pixel), and paints a disc that grows with the light over the glow (blitted first).
// The edges show faintly, and an edge whose two neurons are lit shines with the dimmer one's
// colour. One to four texture reads per pixel, whatever the number of neurons and edges: a
// software rasteriser pays far more per triangle than per texel, so nothing here is drawn as
// geometry per frame. It runs only where a neuron or an edge is: the depth test against the
// marks of mark_structure.glsl skips the rest.

#if defined VERTEX_SHADER

in vec2 in_position;  // a tile's corner, in clip space (depth 0.5: in front of the marks)

void main() {
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform usampler2D u_map;         // RGBA32UI: neuron, distance and edges, edge ends (pack_maps.glsl)
uniform sampler2D u_neurons;      // RGBA8: each neuron's colour, and its light in alpha
uniform vec3 u_edge_color;        // colour of one edge; overlapping edges add up
uniform float u_path_strength;    // how bright an edge between two fully lit neurons shines (0: never)

// Premultiplied, over what the glow pass drew (blend ONE, ONE_MINUS_SRC_ALPHA): the disc covers
// the glow by its coverage, the edges add to it.
out vec4 f_color;

ivec2 texel(uint t) {
    return ivec2(t & 0xFFFFu, t >> 16);
}

void main() {
    uvec4 map = texelFetch(u_map, ivec2(gl_FragCoord.xy), 0);
    float edges = float(map.y >> 16);
    vec3 added = u_edge_color * min(edges, 2.0);
    if (edges > 0.5 && u_path_strength > 0.0) {
        vec4 a = texelFetch(u_neurons, texel(map.z), 0);
        vec4 b = texelFetch(u_neurons, texel(map.w), 0);
        vec4 dim = a.a < b.a ? a : b;
        added += dim.rgb * (u_path_strength * dim.a);
    }
    if (map.x == 0xFFFFFFFFu) {
        f_color = vec4(added, 0.0);
        return;
    }
    vec4 n = texelFetch(u_neurons, texel(map.x), 0);
    // Silent neurons are small dots, loud ones fill their cell; the rim fades for smooth edges.
    float radius = 0.55 + 0.45 * n.a;
    float distance = float(map.y & 0xFFFFu) / 4095.0;
    float cover = clamp((radius - distance) * 6.0, 0.0, 1.0);
    f_color = vec4(mix(added, n.rgb, cover), cover);
}

#endif
