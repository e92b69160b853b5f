// The server as users run it (npm start, the container, the immich-proxy bin): src/server.ts and
// everything it imports in one file, dist/immich-proxy.cjs. Node then reads one file instead of
// ~700 (fastify alone pulls in all of ajv and semver, TypeBox is 266), which takes 40-45 % off
// the start-up to the first answer (issue 5; test/bundle-self-contained.test.ts keeps it so).
// The library build (dist/src, dist/plugins) stays unbundled ES modules for apps that embed the
// plugins.
//
// - CommonJS, not an ES module: the same bundle as an ES module started 10-30 ms slower and sat
//   ~5 MB higher at idle on Node 26 (same run).
// - The sources load TypeBox's CommonJS build and two undici files through
//   `const require = createRequire(import.meta.url)` (see src/config.ts, plugins/lib/upstream.ts),
//   a require esbuild cannot see through: it would leave those ~290 files to be read from
//   node_modules at start-up. That line is dropped here, so the bundle's own require, which
//   esbuild follows, takes them in. Any other use of import.meta fails the build (a CommonJS
//   file has no import.meta).
// - pino stays outside: its worker transports (pino-pretty on a terminal, which pino loads by
//   name) load files by path from pino's own directory, which a bundle does not have.
// - Whitespace and syntax are minified, identifiers are not, so stack traces stay readable; the
//   source map (node --enable-source-maps) leads back to the sources. esbuild still renames
//   names that clash across modules (undici's Pool shows as Pool2); `keepNames` would keep
//   them but cost ~20 ms of start-up, and our plugins and errors carry explicit names.
import { readFile } from 'node:fs/promises'
import { build } from 'esbuild'

const CREATED_REQUIRE = 'const require = createRequire(import.meta.url)'

/** Drops CREATED_REQUIRE from our sources, so that their require() calls are bundled. */
const bundleCreatedRequires = {
  name: 'bundle-created-requires',
  setup (build) {
    build.onLoad({ filter: /\/(src|plugins)\/.*\.ts$/ }, async ({ path }) => {
      const text = await readFile(path, 'utf8')
      if (!text.includes(CREATED_REQUIRE)) return undefined
      return { contents: text.replace(CREATED_REQUIRE, ''), loader: 'ts' }
    })
  }
}

await build({
  entryPoints: ['src/server.ts'],
  outfile: 'dist/immich-proxy.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['pino'],
  plugins: [bundleCreatedRequires],
  logOverride: { 'empty-import-meta': 'error' },
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'external',
  logLevel: 'warning'
})
