#version 330 core
// Neurons: every pixel looks up which neuron covers it (the index map from neuron_ids.glsl,
// whose fourth channel holds how many edges pass there), that neuron's light, and colours a
// disc through the colour map; the edges show through between neurons, and an edge whose two
// neurons are lit (the edge ends map from edge_ends.glsl) glows with the dimmer one's light.
// Between neurons, the glow (glow.py) shows the mean light of the region. A neuron's disc grows
// with its light. Four to six texture reads per pixel, whatever the number of neurons and edges.

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle
out vec2 v_uv;

void main() {
    v_uv = 0.5 * in_position + 0.5;
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_uv;

uniform sampler2D u_ids;          // RGBA16F: (activation texel x, y, distance from centre in radii (2: none), edge density)
uniform sampler2D u_activations;  // R32F: activation of each neuron
uniform sampler2D u_colormap;     // 256 x 1 colour map
uniform sampler2D u_edge_ends;    // RGBA16F: activation texels of the two neurons of an edge here
uniform sampler2D u_glow;         // R32F, an eighth of the size: the mean light of the neurons around
uniform vec3 u_background;
uniform vec3 u_edge_color;        // colour of one edge; overlapping edges add up
uniform float u_floor;            // brightness of a silent neuron, so the structure stays visible
uniform float u_path_strength;    // how bright an edge between two fully lit neurons glows
uniform float u_glow_strength;    // how bright the glow of a fully lit region is (0: none)

out vec4 f_color;

void main() {
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    vec4 id = texelFetch(u_ids, pixel, 0);
    vec3 background = u_background + u_edge_color * min(id.w, 2.0);
    if (u_glow_strength > 0.0) {
        float g = textureLod(u_glow, v_uv, 0.0).r;
        background += textureLod(u_colormap, vec2(0.12 + 0.88 * g, 0.5), 0.0).rgb * (u_glow_strength * g);
    }
    if (id.w > 0.5) {
        vec4 ends = texelFetch(u_edge_ends, pixel, 0);
        float path = min(texelFetch(u_activations, ivec2(ends.xy), 0).r, texelFetch(u_activations, ivec2(ends.zw), 0).r);
        path = clamp(path, 0.0, 1.0);
        background += textureLod(u_colormap, vec2(0.12 + 0.88 * path, 0.5), 0.0).rgb * (u_path_strength * path * path);
    }
    if (id.z > 1.5) {
        f_color = vec4(background, 1.0);
        return;
    }
    float a = clamp(texelFetch(u_activations, ivec2(id.xy), 0).r, 0.0, 1.0);
    // Silent neurons are small dots, loud ones fill their cell; the rim fades for smooth edges.
    float radius = 0.55 + 0.45 * a;
    float cover = clamp((radius - id.z) * 6.0, 0.0, 1.0);
    // The bottom of most maps is near black: start a little up so silent neurons still show.
    vec3 c = textureLod(u_colormap, vec2(0.12 + 0.88 * a, 0.5), 0.0).rgb * (u_floor + (1.0 - u_floor) * a);
    f_color = vec4(mix(background, c, cover), 1.0);
}

#endif
