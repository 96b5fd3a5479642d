#version 330 core
// Features: a kaleidoscope whose ten parameters are the ear's embed features, assigned to
// parameters through a random permutation (10! different pieces, as in Deep Audio Visualization).

#if defined VERTEX_SHADER

in vec2 in_position;  // full-screen triangle
out vec2 v_uv;

void main() {
    v_uv = in_position;
    gl_Position = vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_uv;

uniform float u_params[10];  // each in [0, 1]: the permuted, normalised features
uniform float u_time;
uniform float u_aspect;

out vec4 f_color;

vec3 hsv2rgb(vec3 c) {
    vec3 p = abs(fract(c.xxx + vec3(0.0, 2.0 / 3.0, 1.0 / 3.0)) * 6.0 - 3.0);
    return c.z * mix(vec3(1.0), clamp(p - 1.0, 0.0, 1.0), c.y);
}

void main() {
    float hue = u_params[0];
    float saturation = 0.3 + 0.7 * u_params[1];
    float zoom = 0.6 + 2.4 * u_params[2];
    float spin = (u_params[3] - 0.5) * 2.0;
    float sectors = floor(3.0 + 9.0 * u_params[4]);
    float rings = 2.0 + 14.0 * u_params[5];
    float warp = 1.5 * u_params[6];
    float brightness = 0.25 + 0.75 * u_params[7];
    float pulse = u_params[8];
    float detail = 1.0 + 5.0 * u_params[9];

    vec2 p = v_uv * vec2(u_aspect, 1.0) * zoom;
    float r = length(p);
    float a = atan(p.y, p.x) + spin * u_time * 0.5;
    // Fold the angle into mirrored sectors: the kaleidoscope's symmetry.
    float sector = 6.2831853 / sectors;
    a = abs(mod(a, sector) - 0.5 * sector);
    float wave = sin(rings * r - 2.0 * u_time * (0.3 + pulse) + warp * sin(detail * a * sectors));
    float lines = smoothstep(0.0, 0.9, abs(wave));
    float glow = exp(-r * (1.0 - 0.7 * pulse));
    vec3 c = hsv2rgb(vec3(fract(hue + 0.15 * wave + 0.1 * r), saturation, brightness * (1.0 - lines) * (0.4 + glow)));
    f_color = vec4(c, 1.0);
}

#endif
