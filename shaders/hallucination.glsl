#version 330 core
// Hallucination: a compositional pattern-producing network (CPPN) evaluated per pixel.
// Its input is the pixel's coordinates and a latent vector z that the ear steers (tags, the
// top-P selection or embed features, projected to 8 numbers), so what the ear hears becomes
// the shape and colour of a continuous, slowly moving image. The latent's contribution to the
// first layer is the same for every pixel, so the CPU adds it once as a bias (u_b1).
// Weights are 4x4 blocks: matrix-vector products are what a software rasteriser vectorises best.

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle
out vec2 v_uv;

void main() {
    v_uv = in_position;
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_uv;

uniform mat4 u_w1[4];    // (x, y, r, wave) -> hidden 1, four blocks of four units
uniform vec4 u_b1[4];    // the latent's share of hidden 1 (computed on the CPU per frame)
uniform mat4 u_w2[16];   // hidden 1 -> hidden 2, block (i, j) at i * 4 + j
uniform mat4 u_w3[4];    // hidden 2 -> colour (xyz used)
uniform float u_time;
uniform float u_zoom;    // from the latent: how far out the pattern is seen
uniform float u_aspect;  // width / height
uniform float u_energy;  // overall level of the steering vector, [0, 1]

out vec4 f_color;

void main() {
    vec2 p = v_uv * vec2(u_aspect, 1.0) * u_zoom;
    vec4 x = vec4(p, length(p), sin(0.31 * u_time));
    vec4 h1[4];
    for (int i = 0; i < 4; i++) h1[i] = tanh(u_w1[i] * x + u_b1[i]);
    vec4 h2[4];
    for (int i = 0; i < 4; i++) {
        vec4 s = u_w2[i * 4] * h1[0] + u_w2[i * 4 + 1] * h1[1] + u_w2[i * 4 + 2] * h1[2] + u_w2[i * 4 + 3] * h1[3];
        h2[i] = sin(1.7 * s + 0.2 * u_time);
    }
    vec4 o = u_w3[0] * h2[0] + u_w3[1] * h2[1] + u_w3[2] * h2[2] + u_w3[3] * h2[3];
    vec3 rgb = 1.0 / (1.0 + exp(-2.0 * o.xyz));
    f_color = vec4(rgb * (0.35 + 0.65 * u_energy), 1.0);
}

#endif
