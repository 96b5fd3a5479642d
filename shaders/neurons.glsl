#version 330 core
// Neurons: every pixel looks up which neuron covers it (the index map from neuron_ids.glsl,
// whose fourth channel holds how many edges pass there, packed into bytes by gl.pack_pixels)
// and that neuron's colour and light (computed on the CPU: a software rasteriser pays for
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

uniform usampler2D u_pixels;      // RGBA8UI: the neuron here (24-bit index), its distance (6 bits: 62nds of a radius, 63: none), edges here (2 bits)
uniform sampler2D u_neurons;      // RGBA8: each neuron's colour, and its light in alpha
uniform usampler2D u_pairs;       // RGBA8UI: the two neurons (16 bits each) of an edge here
uniform sampler2D u_glow;         // RGBA8, an eighth of the size: the glow's colour
uniform vec3 u_background;
uniform vec3 u_edge_color;        // colour of one edge; overlapping edges add up
uniform float u_path_strength;    // how bright an edge between two fully lit neurons shines (0: never)
uniform bool u_glow_on;

out vec4 f_color;

const int ROW_WIDTH = 1024;  // the neuron texture's width (gl.py)

ivec2 texel(uint index) {
    return ivec2(int(index & uint(ROW_WIDTH - 1)), int(index >> 10u));
}

void main() {
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    uvec4 p = texelFetch(u_pixels, pixel, 0);
    uint code = p.a >> 2u;
    float edges = float(p.a & 3u);
    vec3 background = u_background + u_edge_color * min(edges, 2.0);
    if (u_glow_on) {
        background += textureLod(u_glow, v_uv, 0.0).rgb;
    }
    if (edges > 0.5 && u_path_strength > 0.0) {
        uvec4 e = texelFetch(u_pairs, pixel, 0);
        vec4 a = texelFetch(u_neurons, texel(e.r | (e.g << 8u)), 0);
        vec4 b = texelFetch(u_neurons, texel(e.b | (e.a << 8u)), 0);
        vec4 dim = a.a < b.a ? a : b;
        background += dim.rgb * (u_path_strength * dim.a);
    }
    if (code == 63u) {
        f_color = vec4(background, 1.0);
        return;
    }
    vec4 n = texelFetch(u_neurons, texel(p.r | (p.g << 8u) | (p.b << 16u)), 0);
    // Silent neurons are small dots, loud ones fill their cell; the rim fades for smooth edges.
    float radius = 0.55 + 0.45 * n.a;
    float cover = clamp((radius - float(code) / 62.0) * 6.0, 0.0, 1.0);
    f_color = vec4(mix(background, n.rgb, cover), 1.0);
}

#endif
