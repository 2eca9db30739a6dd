/**
 * Every ```ts block of README.md and docs/*.md typechecks under `tsc --strict`, as a user would paste it (imports
 * `hotpath/<module>` resolve to the sources). Most guide blocks are excerpts that use the reader's own names
 * (`app`, `db`, `Quote`), so a name the block does not declare is allowed — unless it is one of hotpath's exports
 * (then the block forgot its import). Every other error counts: a wrong option, method, argument or type. A block
 * that is not meant to compile at all (pseudo-code) opts out by its info string: ```ts fragment.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as hotpath from 'hotpath';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
/**
 * Errors that only say the excerpt uses names from around it: cannot find name (2304, 2552 "did you mean"),
 * shorthand property without a value (18004), and parameters whose context is such an unknown name (7006, 7031).
 */
const EXCERPT_ERRORS = /error TS(2304|2552|18004|7006|7031):/;
const HOTPATH_EXPORTS = new Set(Object.keys(hotpath));
const root = resolve(import.meta.dirname, '../..');
const dir = join(root, '.tmp', `doc-blocks-${process.pid}`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Block {
  doc: string;
  line: number;
  file: string;
  code: string;
}

/** The ```ts / ```typescript blocks of one markdown file, without the ones marked `fragment`. */
function extractBlocks(doc: string, text: string): { blocks: Block[]; fragments: number } {
  const blocks: Block[] = [];
  let fragments = 0;
  const fence = /^```(?:ts|typescript)\b([^\n]*)\n([\s\S]*?)^```\s*$/gm;
  for (const match of text.matchAll(fence)) {
    if (/\bfragment\b/.test(match[1] ?? '')) {
      fragments++;
      continue;
    }
    const line = text.slice(0, match.index).split('\n').length + 1;
    const file = `${doc.replace(/[^a-zA-Z0-9]+/g, '_')}_L${line}.ts`;
    blocks.push({ doc, line, file, code: match[2] ?? '' });
  }
  return { blocks, fragments };
}

function collect(): Block[] {
  const docs = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  return docs.flatMap((doc) => extractBlocks(doc, readFileSync(join(root, doc), 'utf8')).blocks);
}

describe('code blocks in README.md and docs/*.md', () => {
  it('the extractor skips fragments and keeps line numbers', () => {
    const text = 'a\n```ts\nconst x: number = 1;\n```\n```ts fragment\nx.y;\n```\n```sh\nls\n```\n';
    const { blocks, fragments } = extractBlocks('d.md', text);
    expect(blocks.map((b) => [b.line, b.code])).toEqual([[3, 'const x: number = 1;\n']]);
    expect(fragments).toBe(1);
  });

  it('typecheck with tsc --strict (excerpts may use undeclared names of the reader’s own)', async () => {
    const blocks = collect();
    expect(blocks.length).toBeGreaterThan(5);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    for (const block of blocks) writeFileSync(join(dir, block.file), `${block.code}\nexport {};\n`);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023', 'ESNext.Disposable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: true,
          noEmit: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
          paths: { hotpath: [join(root, 'src/index.ts')], 'hotpath/*': [join(root, 'src/*/index.ts')] },
        },
        files: blocks.map((block) => block.file),
      }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const output = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir }).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    // Name the doc and its line, not the temp file: "docs/app.md:42 (block line 3): error TS2304 …".
    const byFile = new Map(blocks.map((block) => [block.file, block]));
    const errors = output
      .split('\n')
      .filter((line) => /error TS/.test(line))
      .filter((line) => {
        if (!EXCERPT_ERRORS.test(line)) return true;
        const name = /Cannot find name '([^']+)'|shorthand property '([^']+)'/.exec(line);
        return name !== null && HOTPATH_EXPORTS.has((name[1] ?? name[2]) as string);
      })
      .map((line) => {
        const match = /^([^(]+)\((\d+),\d+\): (.*)$/.exec(line.trim());
        const block = match ? byFile.get(match[1] as string) : undefined;
        if (!match || !block) return line.trim();
        return `${block.doc}:${block.line + Number(match[2]) - 1}: ${match[3]}`;
      });
    expect(errors).toEqual([]);
  }, 180_000);
});
