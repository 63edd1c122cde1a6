// The code-grid view in a real browser: Debian's chromium, headless, driven by playwright-core.
//
//   node tests/codes.test.mjs URL --codes JSON [--click ROW,COL] [--screenshot FILE.png]
//
// URL is a running `aezoo serve` of an export whose decoder takes a grid of integer codes. The
// script waits for the page's testing hook (window.aezoo), decodes each grid of --codes (a JSON
// list of grids, each a list of rows) through setCodes and reads the canvas back, then, after the
// last grid, clicks the cell at ROW,COL as a person would and reads the grid and canvas again, then
// clicks "Random". Prints one JSON object on stdout: {ready, initial, results: [{codes, width,
// height, rgba, lastDrawMs}], click: {before, after, width, height, rgba}, random: {codes}, errors}.
// It exits 1 when the page failed to start or logged an error. The VQ-VAE plugin's
// tests/test_vqvae_web.py runs it and compares the pixels with onnxruntime in Python.
// $CHROMIUM overrides /usr/bin/chromium.

import { chromium } from "playwright-core";

function parse(argv) {
  const options = { url: null, codes: [], click: null, screenshot: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--codes") options.codes = JSON.parse(argv[++i]);
    else if (argv[i] === "--click") options.click = argv[++i].split(",").map(Number);
    else if (argv[i] === "--screenshot") options.screenshot = argv[++i];
    else if (!options.url) options.url = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!options.url) throw new Error("usage: node tests/codes.test.mjs URL --codes JSON [--click ROW,COL]");
  return options;
}

/** The grid and the canvas, in the page. */
function readView() {
  const canvas = window.aezoo.canvas;
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  return {
    codes: window.aezoo.getCodes(),
    width: canvas.width,
    height: canvas.height,
    rgba: Array.from(data),
    lastDrawMs: window.aezoo.lastDrawMs,
  };
}

/** Click `selector` and wait until the page has redrawn the canvas. */
async function clickAndWait(page, selector) {
  await page.evaluate(() => {
    window.aezoo.lastDrawMs = null;
  });
  await page.click(selector);
  await page.waitForFunction(() => window.aezoo.lastDrawMs !== null, null, { timeout: 30_000 });
}

const options = parse(process.argv.slice(2));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const report = { browser: browser.version(), errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  page.on("pageerror", (error) => report.errors.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") report.errors.push(`console: ${message.text()}`);
  });
  page.on("requestfailed", (request) => report.errors.push(`request failed: ${request.url()}`));
  page.on("response", (response) => {
    if (response.status() >= 400) report.errors.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await page.goto(options.url);
  report.ready = await page.evaluate(() => window.aezoo.ready);

  if (report.ready.supported) {
    report.initial = await page.evaluate(() => window.aezoo.getCodes());
    report.results = [];
    for (const codes of options.codes) {
      await page.evaluate((codes) => window.aezoo.setCodes(codes), codes);
      report.results.push(await page.evaluate(readView));
    }
    if (options.click) {
      const [row, col] = options.click;
      const before = await page.evaluate(() => window.aezoo.getCodes());
      await clickAndWait(page, `#code-grid [data-row="${row}"][data-col="${col}"]`);
      const after = await page.evaluate(readView);
      const label = await page.locator(`#code-grid [data-row="${row}"][data-col="${col}"]`).textContent();
      report.click = { before, after: after.codes, label, ...after };
    }
    await clickAndWait(page, "#grid-random");
    report.random = { codes: await page.evaluate(() => window.aezoo.getCodes()) };
  }
  if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true });
} catch (error) {
  report.errors.push(`script: ${error.message}`);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exitCode = report.errors.length || !report.ready ? 1 : 0;
