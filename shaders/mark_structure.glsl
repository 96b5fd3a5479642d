#version 330 core
// Mark where neurons and edges are: depth 0 there, 1 elsewhere, baked once per layout into the
// picture's depth buffer. Each frame the layout view's neuron pass (neurons.glsl) tests against
// it and a software rasteriser skips shading every 4x4 block with neither: only the glow
// (the blit program, views.draw_layout) shows there.

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle

void main() {
    gl_Position = vec4(in_position, -1.0, 1.0);  // depth 0
}

#elif defined FRAGMENT_SHADER

uniform usampler2D u_map;  // RGBA32UI (pack_maps.glsl)

out vec4 f_color;  // masked off

void main() {
    uvec4 map = texelFetch(u_map, ivec2(gl_FragCoord.xy), 0);
    if (map.x == 0xFFFFFFFFu && (map.y >> 16) == 0u) discard;
    f_color = vec4(0.0);
}

#endif
