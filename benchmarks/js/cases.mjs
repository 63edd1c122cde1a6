// Run one exported part's cases in an onnxruntime JavaScript binding (onnxruntime-node in Node,
// onnxruntime-web in the browser): each case once for its outputs, then the timed cases again for
// their latency. Self-contained (no imports, no outer names), so run_web.mjs can send its source
// into the page and both runtimes run the very same code.
//
// A case is {name, timed, feeds: {input: {dtype, dims, data}}}, data the little-endian bytes in
// base64; outputs come back the same way. `options`: {runs, warmup, budgetMs} — at most `runs`
// timed calls after `warmup` untimed ones, fewer once `budgetMs` is spent (at least 3).

export async function runCases(ort, session, cases, options) {
  const ARRAYS = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array, uint8: Uint8Array };
  const fromBase64 = (text) => {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  };
  const toBase64 = (view) => {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    let raw = "";
    for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(raw);
  };
  const tensor = ({ dtype, dims, data }) => {
    const Array_ = ARRAYS[dtype];
    if (!Array_) throw new Error(`no typed array for ${dtype}`);
    const bytes = fromBase64(data);
    const copy = new Array_(bytes.byteLength / Array_.BYTES_PER_ELEMENT);
    new Uint8Array(copy.buffer).set(bytes);
    return new ort.Tensor(dtype, copy, dims);
  };
  const firstLine = (error) => String(error?.message ?? error).split("\n").find((line) => line.trim()) ?? String(error);
  const results = [];
  for (const item of cases) {
    const result = { name: item.name, outputs: null, error: null, times_ms: [] };
    results.push(result);
    let feeds;
    try {
      feeds = Object.fromEntries(Object.entries(item.feeds).map(([name, spec]) => [name, tensor(spec)]));
      const outputs = await session.run(feeds);
      result.outputs = Object.fromEntries(
        session.outputNames.map((name) => [name, { dtype: outputs[name].type, dims: Array.from(outputs[name].dims), data: toBase64(outputs[name].data) }]),
      );
    } catch (error) {
      result.error = firstLine(error);
      continue;
    }
    if (!item.timed) continue;
    for (let i = 0; i < options.warmup; i++) await session.run(feeds);
    const begun = performance.now();
    while (result.times_ms.length < options.runs) {
      const started = performance.now();
      await session.run(feeds);
      result.times_ms.push(performance.now() - started);
      if (result.times_ms.length >= 3 && performance.now() - begun > options.budgetMs) break;
    }
  }
  return results;
}
