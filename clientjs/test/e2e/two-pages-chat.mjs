// Two Chromium pages on a running chat demo: both join "lobby", one writes, the other must
// see it. Used by tests/package (the demo from a wheel installed in a fresh virtualenv).
//
//   node test/e2e/two-pages-chat.mjs http://127.0.0.1:PORT     exit 0 and prints {"ok":true,...}
import { launchBrowser } from './harness.mjs';

const WAIT = 20_000; // bound for one UI update caused by a server event

async function openAs(browser, url, name) {
  const page = await browser.newPage(url + '/');
  await page.locator('#status.open').waitFor({ timeout: WAIT });
  await page.locator('#room-list li[data-room="lobby"]').waitFor({ timeout: WAIT });
  await page.fill('#name', name);
  await page.press('#name', 'Tab'); // the page sends "hello"
  await page.click('#room-list li[data-room="lobby"]');
  await page.locator('#room-title', { hasText: '# lobby' }).waitFor({ timeout: WAIT });
  return page;
}

const url = process.argv[2];
if (!url) {
  console.error('usage: node two-pages-chat.mjs http://HOST:PORT');
  process.exit(2);
}
const browser = await launchBrowser();
try {
  const ada = await openAs(browser, url, 'Ada');
  const grace = await openAs(browser, url, 'Grace');
  // both are listed as here before anyone writes (so the roomcast has both as members)
  await ada.waitForFunction(() => document.querySelectorAll('#who li').length === 2, null, { timeout: WAIT });
  const text = `from a wheel ${Date.now()}`;
  await ada.fill('#text', text);
  await ada.press('#text', 'Enter');
  const seen = grace.locator('#messages .message', { hasText: text });
  await seen.waitFor({ timeout: WAIT });
  const from = await seen.locator('.meta b').textContent();
  if (from !== 'Ada') throw new Error(`message shown as from ${from}`);
  if (browser.errors.length) throw new Error(`page errors: ${browser.errors.join('; ')}`);
  console.log(JSON.stringify({ ok: true, text, from }));
} catch (err) {
  console.error(String(err?.stack || err));
  process.exitCode = 1;
} finally {
  await browser.close();
}
