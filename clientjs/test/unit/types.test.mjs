// index.d.ts (CommonJS/script) and index.d.mts (ESM) declare the same class members,
// and those are exactly the public members of the runtime class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builds, clientRoot } from './helpers.mjs';

function classMembers(file) {
  const text = readFileSync(join(clientRoot, file), 'utf8');
  const body = text.match(/declare class SS \{([\s\S]*?)\n\}/)[1];
  const members = { static: new Set(), instance: new Set() };
  for (const line of body.split('\n')) {
    const m = line.match(/^  (static )?(?:readonly )?([A-Za-z_]\w*)\s*[(:]/);
    if (m && m[2] !== 'constructor') members[m[1] ? 'static' : 'instance'].add(m[2]);
  }
  return { static: [...members.static].sort(), instance: [...members.instance].sort() };
}

test('index.d.ts and index.d.mts declare the same SS members', () => {
  assert.deepEqual(classMembers('index.d.ts'), classMembers('index.d.mts'));
});

test('the declared members are the runtime public members', () => {
  const declared = classMembers('index.d.ts');
  const { SS } = builds[1][1];
  const runtimeStatic = Object.keys(SS).sort();
  const runtimeInstance = [
    ...Object.getOwnPropertyNames(SS.prototype).filter((n) => n !== 'constructor' && !n.startsWith('_')),
    'noop',
  ].sort();
  assert.deepEqual(declared.static, runtimeStatic);
  assert.deepEqual(declared.instance, runtimeInstance);
});

test('index.d.mts exports the named ESM exports', () => {
  const text = readFileSync(join(clientRoot, 'index.d.mts'), 'utf8');
  for (const name of ['SS', 'encode', 'decode', 'VERSION']) {
    assert.match(text, new RegExp(`export declare (class|function|const) ${name}\\b`));
  }
  assert.match(text, /export default SS;/);
});
