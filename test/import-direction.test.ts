// The one-way imports CONTRIBUTING.md describes: plugins get typed options and never reach into
// src/ (the environment, the config, the servers) nor read the environment themselves; shipped
// code never imports tests or benchmarks.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { root } from './helpers/root.js'

function sources (dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter(entry => entry.isFile() && entry.name.endsWith('.ts'))
    .map(entry => relative(root, join(entry.parentPath, entry.name)))
}

/** The repository paths a file's relative imports (static, dynamic, type-only) point at. */
export function relativeImports (file: string, text: string): string[] {
  const found: string[] = []
  for (const match of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    found.push(relative(root, resolve(root, dirname(file), match[1])))
  }
  return found
}

t.test('the rule finds what it looks for', async t => {
  const text = "import a from '../../src/config.js'\nimport type { B } from './b.js'\nconst c = await import('../x/c.js')\n"
  t.same(relativeImports('plugins/tls/tls.ts', text), ['src/config.js', 'plugins/tls/b.js', 'plugins/x/c.js'])
})

t.test('plugins import neither src/, nor tests or benchmarks, and read no environment', async t => {
  const plugins = sources('plugins')
  t.ok(plugins.length > 10, `${plugins.length} plugin sources read`)
  for (const file of plugins) {
    const text = readFileSync(join(root, file), 'utf8')
    const outside = relativeImports(file, text).filter(path => !path.startsWith('plugins/'))
    t.same(outside, [], `${file} imports only within plugins/`)
    t.notMatch(text, /process\.env\b/, `${file} reads no environment variable`)
  }
})

t.test('src/ imports neither tests nor benchmarks', async t => {
  for (const file of sources('src')) {
    const wrong = relativeImports(file, readFileSync(join(root, file), 'utf8'))
      .filter(path => !path.startsWith('src/') && !path.startsWith('plugins/'))
    t.same(wrong, [], `${file} imports only src/ and plugins/`)
  }
})

t.test('tests import no benchmark: what both need lives under test/helpers/, which bench/ may import', async t => {
  const tests = sources('test')
  t.ok(tests.length > 100, `${tests.length} test sources read`)
  for (const file of tests) {
    const wrong = relativeImports(file, readFileSync(join(root, file), 'utf8')).filter(path => path.startsWith('bench/'))
    t.same(wrong, [], `${file} imports nothing from bench/`)
  }
})
