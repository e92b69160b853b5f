// The documentation is read in a clone of this repository: every relative link of README.md,
// CONTRIBUTING.md and docs/ leads to a file of the repository (and, with an anchor, to a heading
// of that file), and nothing points at documents outside it, which a user does not have.
import t from 'tap'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { root } from './helpers/ops.js'

const documents = ['README.md', 'CONTRIBUTING.md', ...readdirSync(join(root, 'docs')).filter(name => name.endsWith('.md')).map(name => `docs/${name}`)]

/** The text outside fenced code blocks (and, unless kept, code spans), where a link is a link. */
function prose (markdown: string, keepCodeSpans = false): string {
  const unfenced = markdown.replace(/^```[\s\S]*?^```/gm, '')
  return keepCodeSpans ? unfenced : unfenced.replace(/`[^`\n]*`/g, '')
}

/** GitHub's anchors for a document's headings: lower case, punctuation dropped, spaces to hyphens. */
function anchors (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  for (const [, heading] of prose(markdown, true).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = heading.toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-')
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    result.add(count === 0 ? base : `${base}-${count}`)
  }
  return result
}

function links (markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^()\s]+)(?: "[^"]*")?\)/g)].map(match => match[1])
}

t.test('every relative link in the documentation resolves inside the repository', async t => {
  t.ok(documents.length >= 6, `README.md, CONTRIBUTING.md and docs/*.md (${documents.join(', ')})`)
  for (const document of documents) {
    const markdown = readFileSync(join(root, document), 'utf8')
    for (const link of links(markdown)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue // https:, mailto: …: not a file of ours
      const [path, anchor] = link.split('#') as [string, string | undefined]
      const target = path === '' ? join(root, document) : resolve(root, dirname(document), decodeURIComponent(path))
      const where = `${document} → ${link}`
      t.notOk(relative(root, target).startsWith('..' + sep) || relative(root, target) === '..', `${where}: inside the repository`)
      if (!existsSync(target)) {
        t.fail(`${where}: no such file`)
        continue
      }
      if (anchor !== undefined && anchor !== '' && statSync(target).isFile() && target.endsWith('.md')) {
        t.ok(anchors(readFileSync(target, 'utf8')).has(anchor), `${where}: a heading with that anchor`)
      } else {
        t.pass(`${where}: exists`)
      }
    }
  }
})

// Documents and sources, walked; this file is left out, since it names what it looks for.
const self = join(root, 'test', 'docs-links.test.ts')
const skip = new Set(['node_modules', 'dist', '.git', '.tap', '.test-build'])

function files (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return skip.has(entry.name) ? [] : files(path)
    return path === self ? [] : [path]
  })
}

t.test('no document or source file refers to ../shared or to the team\'s shared design notes', async t => {
  const scanned = [
    ...documents.map(document => join(root, document)),
    ...['src', 'plugins', 'test', 'bench', 'scripts', 'deploy', '.ci'].flatMap(dir => files(join(root, dir))),
    ...['Dockerfile', 'docker-compose.yml', '.env.example', 'package.json', 'eslint.config.js'].map(name => join(root, name))
  ]
  t.ok(scanned.length > 100, `${scanned.length} files scanned`)
  const outside = /\.\.\/shared\b|\bshared\/(?:DESIGN|STYLE)\.md|\bshared\/reference\//
  const found = scanned.filter(file => outside.test(readFileSync(file, 'utf8'))).map(file => relative(root, file))
  t.same(found, [], 'none')
})
