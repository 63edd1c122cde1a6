// Pixel maths for the upscale view, free of the DOM (node imports it as it is): RGBA bytes to and
// from planes (Float32Array, stored as torch stores them; each sum taken in float64), BT.601
// colour by the matrices a manifest's `decoding.color_rebuild` gives, and bicubic upscaling as
// torch's F.interpolate(mode="bicubic", align_corners=False) does it. The Python reference is
// plugins/aezoo_superres (color.py, SuperResolution.upscale).

/** torch's cubic convolution coefficient (PIL and MATLAB use −0.5). */
export const TORCH_CUBIC_A = -0.75;

/** True when every pixel of `rgba` has R = G = B: a grey picture (as a grey PNG or JPEG decodes). */
export function isGrey(rgba) {
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i] !== rgba[i + 1] || rgba[i] !== rgba[i + 2]) return false;
  }
  return true;
}

/** The channels of `rgba` (`count` of 1 or 3, alpha dropped) as planes of values in [0, 1]. */
export function toPlanes(rgba, count) {
  const pixels = rgba.length / 4;
  const planes = [];
  for (let c = 0; c < count; c++) {
    const plane = new Float32Array(pixels);
    for (let p = 0; p < pixels; p++) plane[p] = rgba[4 * p + c] / 255;
    planes.push(plane);
  }
  return planes;
}

/** One value in `range` as an 8-bit level: round(clamp((v − lo) / (hi − lo), 0, 1) · 255). */
export function toByte(value, [low, high] = [0, 1]) {
  const unit = (value - low) / (high - low);
  return Math.round((unit > 1 ? 1 : unit > 0 ? unit : 0) * 255); // NaN → 0
}

/** One plane (grey) or three (R, G, B), values in `range`, as opaque RGBA bytes. */
export function toRgba(planes, range = [0, 1]) {
  const pixels = planes[0].length;
  const rgba = new Uint8ClampedArray(4 * pixels);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) rgba[4 * p + c] = toByte(planes[planes.length === 1 ? 0 : c][p], range);
    rgba[4 * p + 3] = 255;
  }
  return rgba;
}

function affine(planes, offset, matrix, before, after, clampUnit) {
  const pixels = planes[0].length;
  const out = [new Float32Array(pixels), new Float32Array(pixels), new Float32Array(pixels)];
  const [a, b, c] = planes;
  for (let p = 0; p < pixels; p++) {
    const x = [a[p], b[p], c[p]];
    for (let row = 0; row < 3; row++) {
      const m = matrix[row];
      let v = after(m[0] * before(x[0], 0) + m[1] * before(x[1], 1) + m[2] * before(x[2], 2), row);
      if (clampUnit) v = v > 1 ? 1 : v > 0 ? v : 0;
      out[row][p] = v;
    }
  }
  return out;
}

/** R, G, B planes in [0, 1] → Y, Cb, Cr: `(offset + matrix · [R, G, B]) / 255` (color_rebuild.rgb_to_ycbcr). */
export function rgbToYcbcr(rgb, { offset, matrix }) {
  return affine(rgb, offset, matrix, (x) => x, (v, row) => (offset[row] + v) / 255, false);
}

/** Y, Cb, Cr → R, G, B: `clamp(matrix · ([Y, Cb, Cr] · 255 − offset) / 256 / 255, 0, 1)` (ycbcr_to_rgb). */
export function ycbcrToRgb(ycbcr, { offset, matrix }) {
  return affine(ycbcr, offset, matrix, (x, col) => x * 255 - offset[col], (v) => v / 256 / 255, true);
}

/** Weights of the 4 taps at distance 1 + t, t, 1 − t, 2 − t (Keys' cubic convolution, coefficient a). */
function cubicWeights(t, a) {
  const near = (x) => ((a + 2) * x - (a + 3)) * x * x + 1; // |x| ≤ 1
  const far = (x) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; // 1 < |x| < 2
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** For each output index along an axis of `size` → `size · scale`: its 4 clamped source indices and weights. */
function taps(size, scale, a) {
  const out = size * scale;
  const index = new Int32Array(4 * out);
  const weight = new Float64Array(4 * out);
  for (let o = 0; o < out; o++) {
    const source = (o + 0.5) / scale - 0.5; // half-pixel centres; not clamped (torch's cubic)
    const first = Math.floor(source);
    const w = cubicWeights(source - first, a);
    for (let k = 0; k < 4; k++) {
      index[4 * o + k] = Math.min(size - 1, Math.max(0, first - 1 + k)); // edges clamped
      weight[4 * o + k] = w[k];
    }
  }
  return { index, weight };
}

/** A `width` × `height` plane upscaled ×`scale` (an integer) by bicubic interpolation, unclamped. */
export function bicubic(plane, width, height, scale, a = TORCH_CUBIC_A) {
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`bicubic takes an integer scale ≥ 1, not ${scale}`);
  const outWidth = width * scale;
  const outHeight = height * scale;
  const across = taps(width, scale, a);
  const down = taps(height, scale, a);
  const rows = new Float32Array(height * outWidth); // first along each row, then down each column
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < outWidth; x++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) sum += across.weight[4 * x + k] * plane[row + across.index[4 * x + k]];
      rows[y * outWidth + x] = sum;
    }
  }
  const out = new Float32Array(outHeight * outWidth);
  for (let y = 0; y < outHeight; y++) {
    const i = down.index;
    const w = down.weight;
    const r0 = i[4 * y] * outWidth;
    const r1 = i[4 * y + 1] * outWidth;
    const r2 = i[4 * y + 2] * outWidth;
    const r3 = i[4 * y + 3] * outWidth;
    const [w0, w1, w2, w3] = [w[4 * y], w[4 * y + 1], w[4 * y + 2], w[4 * y + 3]];
    for (let x = 0; x < outWidth; x++) {
      out[y * outWidth + x] = w0 * rows[r0 + x] + w1 * rows[r1 + x] + w2 * rows[r2 + x] + w3 * rows[r3 + x];
    }
  }
  return out;
}

/** `{width, height, rgba}` upscaled by bicubic interpolation of R, G and B, rounded to 8 bits. */
export function bicubicImage({ width, height, rgba }, scale) {
  const planes = toPlanes(rgba, 3).map((plane) => bicubic(plane, width, height, scale));
  return { width: width * scale, height: height * scale, rgba: toRgba(planes) };
}
