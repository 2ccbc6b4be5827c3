// The committed builds are what src/sacsock.mjs builds to, the server's copy is identical,
// and the UMD build works as a <script> (global SS), under CommonJS and under AMD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import { build } from '../../scripts/build.mjs';
import { builds, clientRoot } from './helpers.mjs';

const read = (rel) => readFileSync(join(clientRoot, rel), 'utf8');
const pkg = JSON.parse(read('package.json'));

test('dist/ and the server copy are up to date with src/ (else run: npm run build)', () => {
  for (const [rel, text] of Object.entries(build())) {
    assert.ok(existsSync(join(clientRoot, rel)), rel + ' exists');
    assert.ok(read(rel) === text, rel + ' is stale: run npm run build');
  }
});

test('sacsock_actors/static/sacsock.js is byte-identical to dist/sacsock.js', () => {
  const a = readFileSync(join(clientRoot, 'dist', 'sacsock.js'));
  const b = readFileSync(join(clientRoot, '..', 'sacsock_actors', 'static', 'sacsock.js'));
  assert.ok(a.equals(b));
});

test('both builds expose the same API and version', () => {
  const [[, umd], [, esm]] = builds;
  const surface = (SS) => ({
    statics: Object.keys(SS).sort(),
    proto: Object.getOwnPropertyNames(SS.prototype).sort(),
  });
  assert.deepEqual(surface(umd.SS), surface(esm.SS));
  assert.equal(umd.VERSION, pkg.version);
  assert.equal(esm.VERSION, pkg.version);
  for (const { SS } of [umd, esm]) {
    assert.equal(SS.SS, SS);
    assert.equal(SS.default, SS);
    for (const name of ['onConnect', 'onDisconnect', 'on', 'off', 'emit', 'close', 'ready']) {
      assert.equal(typeof SS.prototype[name], 'function', name);
    }
    assert.ok(Object.getOwnPropertyDescriptor(SS.prototype, 'state').get, 'state is a getter');
  }
});

test('the UMD build as a classic <script> defines the global SS and nothing else', () => {
  const sandbox = { TextEncoder, TextDecoder, ArrayBuffer, Uint8Array, DataView, console };
  vm.createContext(sandbox);
  const before = new Set(Object.keys(sandbox));
  vm.runInContext(read('dist/sacsock.js'), sandbox, { filename: 'sacsock.js' });
  const added = Object.keys(sandbox).filter((k) => !before.has(k));
  assert.deepEqual(added, ['SS']);
  assert.equal(typeof sandbox.SS, 'function');
  assert.equal(sandbox.SS.VERSION, pkg.version);
  // encoding works in that realm, with that realm's ArrayBuffer
  const frame = vm.runInContext('SS.encode("e", new Uint8Array([1]))', sandbox);
  assert.equal(Object.prototype.toString.call(frame), '[object ArrayBuffer]');
  assert.equal(frame.byteLength, 3);
});

test('the UMD build registers an anonymous AMD module when define.amd exists', () => {
  let registered = null;
  const define = (deps, factory) => (registered = { deps, value: factory() });
  define.amd = {};
  const sandbox = { define, TextEncoder, TextDecoder };
  vm.createContext(sandbox);
  vm.runInContext(read('dist/sacsock.js'), sandbox);
  assert.equal(registered.deps.length, 0); // an array from the sandbox realm
  assert.equal(registered.value.VERSION, pkg.version);
  assert.equal(sandbox.SS, undefined);
});

test('package.json points at files that exist', () => {
  const targets = [pkg.main, pkg.module, pkg.types];
  const walk = (node) => {
    if (typeof node === 'string') targets.push(node);
    else for (const v of Object.values(node)) walk(v);
  };
  walk(pkg.exports);
  for (const t of targets) assert.ok(existsSync(join(clientRoot, t)), t);
  assert.deepEqual(Object.keys(pkg.dependencies || {}), [], 'no runtime dependencies');
  assert.deepEqual(Object.keys(pkg.devDependencies), ['playwright-core']);
});
