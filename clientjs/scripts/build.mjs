// Build dist/sacsock.mjs (ES module) and dist/sacsock.js (UMD) from src/sacsock.mjs,
// and copy the UMD build to ../sacsock_actors/static/sacsock.js (served at GET /sacsock.js).
//
//   node scripts/build.mjs          write the files
//   node scripts/build.mjs --check  exit 1 if a committed file differs from a fresh build
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MARKER = '// @@exports';

export function build() {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const source = readFileSync(join(root, 'src', 'sacsock.mjs'), 'utf8');
  const cut = source.indexOf(MARKER);
  if (cut === -1) throw new Error('src/sacsock.mjs lacks the "' + MARKER + '" line');
  if (!source.includes("'__VERSION__'")) throw new Error('src/sacsock.mjs lacks the __VERSION__ placeholder');
  const banner = `/*! sacsock-client ${pkg.version} | generated from src/sacsock.mjs by scripts/build.mjs; do not edit */\n`;
  const body = source.slice(0, cut).replace("'__VERSION__'", JSON.stringify(pkg.version));
  const esm = banner + body + source.slice(cut);
  const indented = body.trimEnd().split('\n').map((l) => (l ? '  ' + l : l)).join('\n');
  const umd =
    banner +
    `(function (root, factory) {
  if (typeof define === 'function' && define.amd) define([], factory);
  else if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.SS = factory();
})(typeof globalThis !== 'undefined' ? globalThis : typeof self !== 'undefined' ? self : this, function () {
  'use strict';

${indented}

  return SS;
});
`;
  return {
    'dist/sacsock.mjs': esm,
    'dist/sacsock.js': umd,
    '../sacsock_actors/static/sacsock.js': umd,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [rel, text] of Object.entries(build())) {
    const file = join(root, rel);
    const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
    if (current === text) continue;
    if (check) {
      console.error(`stale: ${relative(process.cwd(), file)} (run: npm run build)`);
      stale++;
    } else {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
      console.log(`wrote ${relative(process.cwd(), file)}`);
    }
  }
  process.exitCode = stale ? 1 : 0;
}
