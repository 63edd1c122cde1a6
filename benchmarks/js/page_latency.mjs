// aezoo's page (aezoo serve) in headless Debian chromium under DevTools CPU throttling, timed by the
// page's own performance.now(): a latent pad's pointer move to the redrawn canvas, and a melody's
// "Sample" click to playable notes. Driven by playwright-core, run by benchmarks/page_latency.py.
//
//   node benchmarks/js/page_latency.mjs JOB.json RESULT.json
//
// JOB.json: {images: [{name, url, throttle, moves, warmup}], melodies: [{name, url, throttle, samples,
// warmup}]}, each url a running `aezoo serve` of that export and throttle the CPU slowdown (1: none).
// RESULT.json: {browser, images: [{name, throttle, view, moves: [{lastDrawMs, decodeMs, inputDelayMs, code}]}],
// melodies: [{name, throttle, view, samples: [{lastSampleMs, z, temperature, tokens}]}], errors}.
//
// Images: the page loads unthrottled; once its first draw and the decoded map behind the pad are
// done, throttling starts and the mouse goes down on #pad and moves along a Lissajous figure over
// it, one move at a time: each waits for the redraw it causes, so every move is one redraw.
// `lastDrawMs` is the latent view's own figure (from the pointer handler's code change to the
// image's putImageData), `decodeMs` the part of it the view shows as "decoded in X ms" (its decode
// and putImageData, to 0.1 ms); `inputDelayMs` is how long the event waited before that handler ran (the
// handler's performance.now() minus the event's timeStamp, read by a capture listener on window).
// Melodies: the page samples its first melody unthrottled; then each "Sample" click (the button,
// as a person clicks it) is timed by the melody view's `lastSampleMs` (the click handler to the
// notes shown and playable), waiting for the button to come back before the next.
// $CHROMIUM overrides /usr/bin/chromium.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const webProject = path.resolve(here, "..", "..", "exports", "web");
const { chromium } = createRequire(path.join(webProject, "package.json"))("playwright-core");

const [jobFile, resultFile] = process.argv.slice(2);
if (!jobFile || !resultFile) throw new Error("usage: node benchmarks/js/page_latency.mjs JOB.json RESULT.json");
const job = JSON.parse(readFileSync(jobFile, "utf8"));

async function open(browser, entry, errors) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  page.on("pageerror", (error) => errors.push(`${entry.name}: page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${entry.name}: console: ${message.text()}`);
  });
  await page.goto(entry.url);
  const ready = await page.evaluate(() => window.aezoo.ready);
  return { page, ready };
}

async function throttle(page, rate) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate });
  return cdp;
}

async function padMoves(browser, entry, errors) {
  const { page, ready } = await open(browser, entry, errors);
  const found = { name: entry.name, throttle: entry.throttle, view: ready.view ?? null, reason: ready.reason ?? null, moves: [] };
  if (ready.view !== "latent") return found;
  // the decoded map behind the pad runs on the same session: a redraw queued now waits for it
  await page.evaluate(() => window.aezoo.setCode(window.aezoo.getCode()));
  await page.evaluate(() => {
    const stamp = (event) => (window.benchInput = { timeStamp: event.timeStamp, handler: performance.now() });
    window.addEventListener("pointerdown", stamp, { capture: true });
    window.addEventListener("pointermove", stamp, { capture: true });
    window.aezoo.lastDrawMs = null;
  });
  await throttle(page, entry.throttle);
  const box = await page.locator("#pad").boundingBox();
  const total = entry.warmup + entry.moves;
  const at = (i) => {
    const t = i / total;
    return [box.x + box.width * (0.5 + 0.4 * Math.sin(2 * Math.PI * 3 * t)), box.y + box.height * (0.5 + 0.4 * Math.sin(2 * Math.PI * 2 * t + 0.5))];
  };
  const read = () =>
    page.evaluate(() => {
      const hook = window.aezoo;
      const decoded = /decoded in ([\d.]+) ms/.exec(document.getElementById("timing").textContent);
      const got = {
        lastDrawMs: hook.lastDrawMs,
        decodeMs: decoded ? Number(decoded[1]) : null,
        inputDelayMs: window.benchInput.handler - window.benchInput.timeStamp,
        code: hook.getCode(),
      };
      hook.lastDrawMs = null;
      return got;
    });
  const drawn = () => page.waitForFunction(() => window.aezoo.lastDrawMs !== null, null, { polling: "raf", timeout: 60_000 });
  await page.mouse.move(...at(0));
  await page.mouse.down();
  await drawn();
  await read();
  for (let i = 1; i <= total; i++) {
    await page.mouse.move(...at(i));
    await drawn();
    const move = await read();
    if (i > entry.warmup) found.moves.push(move);
  }
  await page.mouse.up();
  await page.close();
  return found;
}

async function samples(browser, entry, errors) {
  const { page, ready } = await open(browser, entry, errors);
  const found = { name: entry.name, throttle: entry.throttle, view: ready.view ?? null, reason: ready.reason ?? null, samples: [] };
  if (ready.view !== "melody") return found;
  await page.evaluate(() => (window.aezoo.lastSampleMs = null));
  await throttle(page, entry.throttle);
  const button = page.locator("#melody-sample");
  for (let i = 0; i < entry.warmup + entry.samples; i++) {
    await button.click();
    await page.waitForFunction(() => window.aezoo.lastSampleMs !== null, null, { polling: "raf", timeout: 60_000 });
    await page.waitForFunction(() => !document.getElementById("melody-sample").disabled, null, { polling: "raf" });
    const sample = await page.evaluate(() => {
      const hook = window.aezoo;
      const got = { lastSampleMs: hook.lastSampleMs, z: hook.z, temperature: Number(document.getElementById("melody-temperature")?.value ?? NaN), tokens: hook.tokens };
      hook.lastSampleMs = null;
      return got;
    });
    if (i >= entry.warmup) found.samples.push(sample);
  }
  await page.close();
  return found;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const report = { browser: browser.version(), images: [], melodies: [], errors: [] };
try {
  for (const entry of job.images ?? []) {
    report.images.push(await padMoves(browser, entry, report.errors));
    process.stderr.write(`page: ${entry.name} at ${entry.throttle}x done\n`);
  }
  for (const entry of job.melodies ?? []) {
    report.melodies.push(await samples(browser, entry, report.errors));
    process.stderr.write(`page: ${entry.name} at ${entry.throttle}x done\n`);
  }
} catch (error) {
  report.errors.push(`script: ${error.message}`);
} finally {
  await browser.close();
}
writeFileSync(resultFile, JSON.stringify(report));
process.exitCode = report.errors.length ? 1 : 0;
