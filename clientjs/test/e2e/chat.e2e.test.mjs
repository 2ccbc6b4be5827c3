// The chat demo (sacsock_actors/demo, served with --gateways 2) in two browser pages: both join a room, one writes,
// the other sees it. Saves a screenshot to test/artifacts/chat.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot, startServer, launchBrowser, artifactPath } from './harness.mjs';

const WAIT = 15_000; // bound for one UI update caused by a server event

let server;
let browser;

before(async () => {
  // Two gateways: the pages may land on different ones (SO_REUSEPORT), as in production.
  server = await startServer({
    appDir: repoRoot,
    app: 'sacsock_actors.demo.app:server',
    staticDir: join(repoRoot, 'sacsock_actors', 'demo', 'static'),
    extraArgs: ['--gateways', '2'],
    logName: 'chat-server',
  });
  console.log(`# chat example ready on ${server.url} after ${server.startupMs} ms`);
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) console.log(`# chat server stopped: ${JSON.stringify(await server.stop())}`);
});

async function openAs(name) {
  const page = await browser.newPage(server.url + '/');
  await page.locator('#status.open').waitFor({ timeout: WAIT });
  await page.locator('#room-list li[data-room="lobby"]').waitFor({ timeout: WAIT });
  await page.fill('#name', name);
  await page.press('#name', 'Tab'); // commit: the page sends "hello"
  return page;
}

const whoNames = (page) => page.locator('#who li .name').allTextContents();

test('two people chat in a room', async () => {
  const ada = await openAs('Ada');
  const grace = await openAs('Grace');

  for (const page of [ada, grace]) {
    await page.click('#room-list li[data-room="lobby"]');
    await page.locator('#room-title', { hasText: '# lobby' }).waitFor({ timeout: WAIT });
  }
  // who is here: both, on both pages
  for (const page of [ada, grace]) {
    await page.waitForFunction(() => document.querySelectorAll('#who li').length === 2, null, { timeout: WAIT });
    assert.deepEqual((await whoNames(page)).sort(), ['Ada', 'Grace']);
  }
  assert.equal(await ada.locator('#who li:has(.you) .name').textContent(), 'Ada');
  // the room list counts them
  await grace
    .locator('#room-list li[data-room="lobby"] .badge', { hasText: '2' })
    .waitFor({ timeout: WAIT });

  const text = 'Hello Grace! Messages fan out through Ray actors ✓ Grüße';
  await ada.fill('#text', text);
  await ada.click('#send');
  const seen = grace.locator('#messages .message', { hasText: text });
  await seen.waitFor({ timeout: WAIT });
  assert.equal(await seen.locator('.meta b').textContent(), 'Ada');
  assert.equal(await seen.getAttribute('class'), 'message', 'not shown as Grace\'s own');
  const mine = ada.locator('#messages .message.mine', { hasText: text });
  await mine.waitFor({ timeout: WAIT }); // the sender gets the roomcast too

  await grace.fill('#text', 'Hi Ada, got it.');
  await grace.press('#text', 'Enter');
  await ada.locator('#messages .message', { hasText: 'Hi Ada, got it.' }).waitFor({ timeout: WAIT });
  await grace.locator('#messages .message.mine', { hasText: 'Hi Ada, got it.' }).waitFor({ timeout: WAIT });

  // a new room shows up in the other page's list
  await ada.fill('#new-room-name', 'ray-fans');
  await ada.press('#new-room-name', 'Enter');
  await ada.locator('#room-title', { hasText: '# ray-fans' }).waitFor({ timeout: WAIT });
  await grace.locator('#room-list li[data-room="ray-fans"] .badge', { hasText: '1' }).waitFor({ timeout: WAIT });
  await ada.click('#room-list li[data-room="lobby"]'); // back to the conversation (still a member)
  await ada.locator('#room-title', { hasText: '# lobby' }).waitFor({ timeout: WAIT });

  const shot = artifactPath('chat.png');
  await grace.screenshot({ path: shot });
  console.log(`# screenshot: ${shot}`);
  const shotAda = artifactPath('chat-ada.png');
  await ada.screenshot({ path: shotAda });
  console.log(`# screenshot: ${shotAda}`);

  // leaving updates who is here for the one who stays
  await grace.click('#leave');
  await ada.waitForFunction(() => document.querySelectorAll('#who li').length === 1, null, { timeout: WAIT });
  assert.deepEqual(await whoNames(ada), ['Ada']);
  assert.equal(await grace.locator('#room-title').textContent(), 'Pick a room');

  // closing a page (disconnect) updates the other's list of rooms
  await ada.close();
  await grace
    .locator('#room-list li[data-room="lobby"] .badge', { hasText: '0' })
    .waitFor({ timeout: WAIT });
  assert.deepEqual(browser.errors, []);
});
