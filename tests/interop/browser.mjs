// Headless Chromium for the interop tests: opens each page (static/interop.html, served for
// real by a server on 127.0.0.1), waits until its client has joined its room, and reports on
// stdout, one JSON object per line:
//   {"ready": name}                 the page's client has joined its room
//   {"got": name, "data": ...}      the page's client received a roomcast (each one)
//   {"error": "..."}                then exits 1
// usage: node browser.mjs '{"pages": [{"name": N, "url": U}], "timeoutMs": T}'; it runs until
// its stdin closes. Uses clientjs's playwright-core and Debian's /usr/bin/chromium
// (CHROMIUM_BIN); downloads nothing. INTEROP_DEBUG=1 also reports console lines.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', '..', 'clientjs', 'package.json'));
const { chromium } = require('playwright-core');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const config = JSON.parse(process.argv[2]);
const timeoutMs = config.timeoutMs || 120_000;
const userDataDir = mkdtempSync(join(tmpdir(), 'sacsock-interop-chromium-'));
const fail = (msg) => {
  out({ error: msg });
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
};
const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);

try {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const pages = [];
  for (const spec of config.pages) {
    const page = await context.newPage();
    page.on('pageerror', (err) => out({ error: `${spec.name}: ${err}` }));
    if (process.env.INTEROP_DEBUG) page.on('console', (m) => out({ console: spec.name, text: m.text() }));
    await page.goto(spec.url);
    await page.waitForFunction(() => window.__joined === true, null, { timeout: timeoutMs });
    out({ ready: spec.name });
    pages.push({ spec, page, seen: 0 });
  }
  let open = true;
  process.stdin.on('end', () => { open = false; }).resume();
  while (open) {
    for (const p of pages) {
      const got = await p.page.evaluate(() => window.__got);
      for (; p.seen < got.length; p.seen++) out({ got: p.spec.name, data: got[p.seen] });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  clearTimeout(timer);
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
} catch (err) {
  fail(String((err && err.stack) || err));
}
