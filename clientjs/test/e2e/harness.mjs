// End-to-end plumbing: a real `sacsock serve` subprocess and a headless Chromium.
//
//   SACSOCK_BIN    the sacsock executable (default: `sacsock` on PATH)
//   CHROMIUM_BIN   the browser (default: /usr/bin/chromium); nothing is ever downloaded
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const e2eDir = dirname(fileURLToPath(import.meta.url));
export const clientRoot = join(e2eDir, '..', '..');
export const repoRoot = join(clientRoot, '..');
export const artifactsDir = join(clientRoot, 'test', 'artifacts');

const READY_TIMEOUT_MS = 60_000; // a cold Ray start takes 5-10 s; this is a bound, not a wait
const STOP_TIMEOUT_MS = 30_000;

/**
 * A TCP port free a moment ago, picked outside the kernel's ephemeral range (32768+) and
 * Ray's worker ports (10002-19999): Ray's gRPC servers bind port 0 with SO_REUSEPORT, as
 * the gateways do, so an OS-picked port could be shared with one of them later.
 */
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise((resolve) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-32000');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start `sacsock serve <app> --port <port> --static <staticDir> ...extraArgs` with cwd = appDir and wait
 * until GET /sacsock.js answers 200. Returns {port, url, stop(), output(), logFile}.
 */
export async function startServer({ appDir, app, staticDir, port, extraArgs = [], logName }) {
  port = port || (await freePort());
  const bin = process.env.SACSOCK_BIN || 'sacsock';
  const args = ['serve', app, '--host', '127.0.0.1', '--port', String(port)];
  if (staticDir) args.push('--static', staticDir);
  args.push(...extraArgs);
  const child = spawn(bin, args, { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let log = '';
  // The server's output also goes to test/artifacts/<logName>.log, to read after a failure.
  const logFile = logName ? artifactPath(logName + '.log') : null;
  const sink = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
  sink?.write(`\n=== ${new Date().toISOString()} ${bin} ${args.join(' ')} (cwd ${appDir})\n`);
  const keep = (chunk) => {
    sink?.write(chunk);
    log += chunk;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  let exited = null;
  // If this test process dies first (a crash, Ctrl-C), do not leave the server running.
  const orphanGuard = () => child.kill('SIGTERM');
  process.on('exit', orphanGuard);
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      process.off('exit', orphanGuard);
      sink?.end(`=== exit ${JSON.stringify({ code, signal })}\n`);
      resolve((exited = { code, signal }));
    });
    child.on('error', (err) => {
      keep(String(err) + '\n');
      resolve((exited = { code: null, signal: null, error: err }));
    });
  });

  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    if (exited) {
      throw new Error(`${bin} ${args.join(' ')} exited early (${JSON.stringify(exited)}):\n${log}`);
    }
    try {
      const res = await fetch(url + '/sacsock.js');
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {}
    if (Date.now() - started > READY_TIMEOUT_MS) {
      child.kill('SIGKILL');
      await exit;
      throw new Error(`${bin} did not serve ${url}/sacsock.js within ${READY_TIMEOUT_MS} ms:\n${log}`);
    }
    await sleep(200);
  }

  return {
    port,
    url,
    pid: child.pid,
    startupMs: Date.now() - started,
    logFile,
    output: () => log,
    /** SIGTERM, then wait for the process to exit (SIGKILL after a generous bound). */
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exit;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/** Headless Chromium with a fresh profile. Returns {context, newPage(), close()}. */
export async function launchBrowser() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'sacsock-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1100, height: 720 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const errors = [];
  context.on('weberror', (e) => errors.push(String(e.error())));
  return {
    context,
    errors,
    async newPage(url) {
      const page = await context.newPage();
      page.on('pageerror', (err) => errors.push(String(err)));
      if (url) await page.goto(url);
      return page;
    },
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export function artifactPath(name) {
  mkdirSync(artifactsDir, { recursive: true });
  return join(artifactsDir, name);
}
