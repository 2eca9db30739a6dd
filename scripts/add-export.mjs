// Adds (or keeps) one subpath export per module name given: node scripts/add-export.mjs cache queue
import { readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
for (const name of process.argv.slice(2)) {
  pkg.exports[`./${name}`] = {
    import: { types: `./dist/${name}/index.d.ts`, default: `./dist/${name}/index.js` },
    require: { types: `./dist/${name}/index.d.cts`, default: `./dist/${name}/index.cjs` },
  };
}
const { ['./package.json']: pj, ...rest } = pkg.exports;
pkg.exports = { ...rest, './package.json': pj };
writeFileSync('package.json', `${JSON.stringify(pkg, null, 2)}\n`);
