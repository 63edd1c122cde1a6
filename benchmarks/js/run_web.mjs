// onnxruntime-web (exports/web's pinned copy, WebAssembly, one thread) in headless Debian chromium,
// driven by playwright-core, on a job file written by benchmarks/runtimes.py.
//
//   node benchmarks/js/run_web.mjs JOB.json RESULT.json
//
// JOB.json: {options: {runs, warmup, budgetMs}, parts: [{id, url, key, cases}]}, `url` a running
// `aezoo serve` (aezoo.serve.ExportServer) of the part's export and `key` the manifest's part. The
// page opened is the export's manifest (no view of the page runs beside the benchmark); in it,
// `import("/common.js")` gives the page's own `ort` and `openSession` (wasm, numThreads 1, absolute
// wasmPaths, every graph optimisation), and cases.mjs runs the cases. RESULT.json as run_node.mjs's.
// $CHROMIUM overrides /usr/bin/chromium.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runCases } from "./cases.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const webProject = path.resolve(here, "..", "..", "exports", "web");
const { chromium } = createRequire(path.join(webProject, "package.json"))("playwright-core");

const [jobFile, resultFile] = process.argv.slice(2);
if (!jobFile || !resultFile) throw new Error("usage: node benchmarks/js/run_web.mjs JOB.json RESULT.json");
const job = JSON.parse(readFileSync(jobFile, "utf8"));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const report = { runtime: "onnxruntime-web", version: null, browser: browser.version(), threads: 1, parts: [], errors: [] };
try {
  const pages = new Map(); // one page per export
  for (const part of job.parts) {
    if (!pages.has(part.url)) {
      const page = await browser.newPage();
      page.on("pageerror", (error) => report.errors.push(`${part.id}: page error: ${error.message}`));
      await page.goto(new URL("aezoo-export.json", part.url).href);
      pages.set(part.url, page);
    }
    const entry = await pages.get(part.url).evaluate(
      async ([source, key, cases, options]) => {
        const { ort, openSession } = await import("/common.js");
        const runCases = (0, eval)(`(${source})`);
        const manifest = await (await fetch("/aezoo-export.json")).json();
        const found = { version: ort.env.versions?.web ?? null, error: null, cases: [] };
        let session;
        try {
          session = await openSession(manifest, key);
        } catch (error) {
          found.error = String(error?.message ?? error).split("\n")[0];
          return found;
        }
        found.cases = await runCases(ort, session, cases, options);
        await session.release();
        return found;
      },
      [runCases.toString(), part.key, part.cases, job.options],
    );
    report.version = report.version ?? entry.version;
    report.parts.push({ id: part.id, error: entry.error, cases: entry.cases });
    process.stderr.write(`web: ${part.id} done\n`);
  }
} catch (error) {
  report.errors.push(`script: ${error.message}`);
} finally {
  await browser.close();
}
writeFileSync(resultFile, JSON.stringify(report));
process.exitCode = report.errors.length ? 1 : 0;
