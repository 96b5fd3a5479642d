#version 330 core
// Pack the neuron index map and the edge ends map (both baked once per layout) into one
// integer texel per pixel, so the per-frame pass (neurons.glsl) reads one texel where it read
// two: on a software rasteriser each texture read costs about as much as the rest of the pixel.
//   x: the neuron's activation texel (column | row << 16), or NONE
//   y: the distance from its centre, in 4096ths of a radius (below 2), | edges here << 16
//   z, w: the activation texels of the two ends of an edge here (column | row << 16)

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle

void main() {
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform sampler2D u_ids;   // RGBA16F: (neuron texel x, y, distance in radii (2: none), edges here)
uniform sampler2D u_ends;  // RGBA16F: (texel x, y) of both ends of an edge here

out uvec4 f_map;

uint texel(vec2 t) {
    return uint(t.x + 0.5) | (uint(t.y + 0.5) << 16);
}

void main() {
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    vec4 id = texelFetch(u_ids, pixel, 0);
    vec4 ends = texelFetch(u_ends, pixel, 0);
    uint distance = uint(clamp(id.z, 0.0, 2.0) * 4095.0 + 0.5);
    uint edges = uint(clamp(id.w, 0.0, 65535.0) + 0.5);
    f_map = uvec4(id.z > 1.5 ? 0xFFFFFFFFu : texel(id.xy), distance | (edges << 16), texel(ends.xy), texel(ends.zw));
}

#endif
