// onnxruntime-node (exports/node's pinned copy) on a job file written by benchmarks/runtimes.py.
//
//   node benchmarks/js/run_node.mjs JOB.json RESULT.json
//
// JOB.json: {options: {threads, runs, warmup, budgetMs}, parts: [{id, file, cases}]} (cases as
// cases.mjs reads them). RESULT.json: {runtime, version, parts: [{id, error, cases}]}, where a part
// that does not load has `error`, the runtime's own first line, and a case that fails has its own.
// One intra-op and one inter-op thread, sequential execution, every graph optimisation.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runCases } from "./cases.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeProject = path.resolve(here, "..", "..", "exports", "node");
const ort = createRequire(path.join(nodeProject, "package.json"))("onnxruntime-node");
const version = JSON.parse(
  readFileSync(path.join(nodeProject, "node_modules", "onnxruntime-node", "package.json"), "utf8"),
).version;

const [jobFile, resultFile] = process.argv.slice(2);
if (!jobFile || !resultFile) throw new Error("usage: node benchmarks/js/run_node.mjs JOB.json RESULT.json");
const job = JSON.parse(readFileSync(jobFile, "utf8"));
const threads = job.options.threads;
const report = { runtime: "onnxruntime-node", version, node: process.version, threads, parts: [] };
for (const part of job.parts) {
  const entry = { id: part.id, error: null, cases: [] };
  report.parts.push(entry);
  let session;
  try {
    session = await ort.InferenceSession.create(part.file, {
      executionProviders: ["cpu"],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      logSeverityLevel: 3,
    });
  } catch (error) {
    entry.error = String(error?.message ?? error).split("\n")[0];
    continue;
  }
  entry.cases = await runCases(ort, session, part.cases, job.options);
  await session.release();
  process.stderr.write(`node: ${part.id} done\n`);
}
writeFileSync(resultFile, JSON.stringify(report));
