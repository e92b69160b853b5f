// The server as users run it (npm start, the container, the immich-proxy bin): src/server.ts and
// everything it imports in one file, dist/immich-proxy.cjs. Node then reads one file instead of
// ~700 (fastify alone pulls in all of ajv and semver, TypeBox is 266), which takes 40-45 % off
// the start-up to the first answer (docs/design.md; test/bundle-self-contained.test.ts keeps it so).
// The library build (dist/src, dist/plugins) stays unbundled ES modules for apps that embed the
// plugins.
//
// - CommonJS, not an ES module: the same bundle as an ES module started 10-30 ms slower and sat
//   ~5 MB higher at idle on Node 26 (same run).
// - Any use of import.meta fails the build: a CommonJS file has none.
// - pino stays outside: its worker transports (pino-pretty on a terminal, which pino loads by
//   name) load files by path from pino's own directory, which a bundle does not have.
// - Whitespace and syntax are minified, identifiers are not, so stack traces stay readable; the
//   source map (node --enable-source-maps) leads back to the sources. esbuild still renames
//   names that clash across modules (undici's Pool shows as Pool2); `keepNames` would keep
//   them but cost ~20 ms of start-up, and our plugins and errors carry explicit names.
import { build } from 'esbuild'

await build({
  entryPoints: ['src/server.ts'],
  outfile: 'dist/immich-proxy.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['pino'],
  logOverride: { 'empty-import-meta': 'error' },
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'external',
  logLevel: 'warning'
})
