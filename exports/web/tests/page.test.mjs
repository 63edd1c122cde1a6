// The page in a real browser: Debian's chromium, headless, driven by playwright-core.
//
//   node tests/page.test.mjs URL [--codes JSON] [--unsupported URL2] [--screenshot FILE.png]
//
// URL is a running `aezoo serve`. The script waits for the page's testing hook (window.aezoo),
// decodes each code of --codes (a JSON list of lists) through setCode, reads the image canvas back,
// drags across the latent pad, clicks "Random sample", and prints one JSON object on stdout:
// {ready, results: [{code, width, height, rgba, lastDrawMs, setCodeMs}], drag, sample, errors}.
// --unsupported opens a second export whose decoder the page cannot draw: {unsupported: {ready, message}}.
// It exits 1 when the page failed to start or logged an error. tests/test_web.py runs it and
// compares the pixels with onnxruntime in Python. $CHROMIUM overrides /usr/bin/chromium.

import { chromium } from "playwright-core";

function parse(argv) {
  const options = { url: null, codes: [], screenshot: null, unsupported: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--codes") options.codes = JSON.parse(argv[++i]);
    else if (argv[i] === "--screenshot") options.screenshot = argv[++i];
    else if (argv[i] === "--unsupported") options.unsupported = argv[++i];
    else if (!options.url) options.url = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!options.url) throw new Error("usage: node tests/page.test.mjs URL [--codes JSON] [--screenshot FILE]");
  return options;
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
    report.results = [];
    for (const code of options.codes) {
      report.results.push(
        await page.evaluate(async (code) => {
          const started = performance.now();
          await window.aezoo.setCode(code);
          const setCodeMs = performance.now() - started;
          const canvas = window.aezoo.canvas;
          const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
          return {
            code: window.aezoo.getCode(),
            width: canvas.width,
            height: canvas.height,
            rgba: Array.from(data),
            lastDrawMs: window.aezoo.lastDrawMs,
            setCodeMs,
          };
        }, code),
      );
    }

    // a drag across the pad from its top-left quarter to its bottom-right one
    const before = await page.evaluate(() => window.aezoo.getCode());
    const pad = await page.locator("#pad").boundingBox();
    await page.mouse.move(pad.x + pad.width * 0.25, pad.y + pad.height * 0.25);
    await page.mouse.down();
    const start = await page.evaluate(() => window.aezoo.getCode());
    for (let step = 1; step <= 10; step++) {
      const t = 0.25 + (0.5 * step) / 10;
      await page.mouse.move(pad.x + pad.width * t, pad.y + pad.height * t);
    }
    await page.mouse.up();
    await page.waitForFunction(() => window.aezoo.lastDrawMs !== null);
    const end = await page.evaluate(() => window.aezoo.getCode());
    report.drag = { before, start, end };

    await page.click("#sample");
    report.sample = { code: await page.evaluate(() => window.aezoo.getCode()) };
    await page.waitForTimeout(300); // the decoded map behind the pad, for the screenshot
  }
  if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true });

  if (options.unsupported) {
    const other = await browser.newPage();
    other.on("pageerror", (error) => report.errors.push(`unsupported page error: ${error.message}`));
    await other.goto(options.unsupported);
    const ready = await other.evaluate(() => window.aezoo.ready);
    const message = await other.locator("#message").textContent();
    report.unsupported = { ready, message, explorerHidden: await other.locator("#explorer").isHidden() };
  }
} catch (error) {
  report.errors.push(`script: ${error.message}`);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exitCode = report.errors.length || !report.ready ? 1 : 0;
