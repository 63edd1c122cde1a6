// Random numbers for a decoder's inputs by the manifest's `sampling` rules: codes from a normal
// prior, Gumbel noise for a sampling decoder, spherical interpolation between two codes. No DOM:
// the page and Node (exports/node/decode.mjs) import this same module, so a seed gives the same
// numbers in both.
//
// A seed (an integer) makes two independent streams, one for codes and one for noise, so the noise
// of seed S is the same whether the code was drawn here or given.

/** mulberry32: a small 32-bit generator; `next()` gives uniform doubles in [0, 1) with 53 random bits. */
function mulberry32(seed) {
  let state = seed >>> 0;
  const next32 = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return () => (next32() * 2 ** 21 + (next32() >>> 11)) / 2 ** 53;
}

/** A 32-bit hash of (seed, stream), so each stream of a seed starts elsewhere. */
function mix(seed, stream) {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function unseeded() {
  const buffer = new Uint32Array(2);
  return () => {
    globalThis.crypto.getRandomValues(buffer);
    return (buffer[0] * 2 ** 21 + (buffer[1] >>> 11)) / 2 ** 53;
  };
}

/** Is `seed` usable: a whole number in [0, 2^32)? */
export function isSeed(seed) {
  return Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32;
}

/** A fresh random seed. */
export function randomSeed() {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
}

/** `{code, noise}`: uniform [0, 1) generators, reproducible for an integer `seed`, else from crypto. */
export function streams(seed) {
  if (seed === undefined || seed === null) return { code: unseeded(), noise: unseeded() };
  if (!isSeed(seed)) throw new Error(`a seed is a whole number from 0 to 4294967295, not ${seed}`);
  return { code: mulberry32(mix(seed, 0)), noise: mulberry32(mix(seed, 1)) };
}

/** One standard normal number (Box–Muller) from uniform generator `random`. */
export function normal(random) {
  const u = 1 - random(); // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** `size` numbers drawn by a `normal` sampling rule (scalar or per-dimension mean and std). */
export function drawNormal(sampling, size, random) {
  const at = (value, d, fallback) => (Array.isArray(value) ? Number(value[d]) : value === undefined || value === null ? fallback : Number(value));
  return Float32Array.from({ length: size }, (_, d) => at(sampling?.mean, d, 0) + at(sampling?.std, d, 1) * normal(random));
}

/** Why `rule` is not a Gumbel rule this module follows, or null. */
export function gumbelProblem(rule) {
  if (rule?.kind !== "gumbel") return `its noise is drawn by ${JSON.stringify(rule?.kind)}, not "gumbel"`;
  const { u_low: low, u_high: high } = rule;
  if (!(low > 0 && high < 1 && low < high)) return `its Gumbel noise's u range [${low}, ${high}] is not inside (0, 1)`;
  return null;
}

/** `count` Gumbel numbers by the manifest's rule: -log(-log(u)), u uniform in [u_low, u_high]. */
export function gumbelNoise(rule, count, random) {
  const problem = gumbelProblem(rule);
  if (problem) throw new Error(problem);
  const { u_low: low, u_high: high } = rule;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = -Math.log(-Math.log(low + (high - low) * random()));
  return out;
}

/** Spherical interpolation from `a` to `b` at fraction `t` (linear where they are parallel), as
 * aezoo.evaluation.slerp; the ends are `a` and `b` exactly. */
export function slerp(a, b, t) {
  if (t <= 0) return Float32Array.from(a);
  if (t >= 1) return Float32Array.from(b);
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const na = norm(a);
  const nb = norm(b);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] / na) * (b[i] / nb);
  const omega = Math.acos(Math.min(1, Math.max(-1, dot)));
  if (!(Math.abs(omega) >= 1e-6)) return Float32Array.from(a, (x, i) => (1 - t) * x + t * b[i]);
  const wa = Math.sin((1 - t) * omega) / Math.sin(omega);
  const wb = Math.sin(t * omega) / Math.sin(omega);
  return Float32Array.from(a, (x, i) => wa * x + wb * b[i]);
}

/** `steps` codes from `a` to `b`, ends included (t = 0, 1/(steps − 1), …, 1). */
export function slerpPath(a, b, steps) {
  return Array.from({ length: steps }, (_, k) => slerp(a, b, steps === 1 ? 0 : k / (steps - 1)));
}
