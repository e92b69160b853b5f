// The server as users run it (npm start, the container, the immich-proxy bin): src/server.ts and
// everything it imports in one file, dist/immich-proxy.cjs. Node then reads one file instead of
// ~700 (fastify alone pulls in all of ajv and semver), which takes about a quarter off the
// start-up to the first answer (issue 5). The library build (dist/src, dist/plugins) stays
// unbundled ES modules for apps that embed the plugins.
//
// - CommonJS, not an ES module: the same bundle as an ES module started 10-30 ms slower and sat
//   ~5 MB higher at idle on Node 26 (same run). The sources' `import.meta.url` (createRequire in
//   src/config.ts and plugins/lib/upstream.ts) becomes the bundle's own file URL.
// - pino stays outside: its worker transports (pino-pretty on a terminal) load files by path
//   from pino's own directory, which a bundle does not have.
// - Whitespace and syntax are minified, names are not: stack traces and Fastify's plugin names
//   stay readable, and the source map (node --enable-source-maps) leads back to the sources.
import { build } from 'esbuild'

await build({
  entryPoints: ['src/server.ts'],
  outfile: 'dist/immich-proxy.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['pino', 'pino-pretty'],
  define: { 'import.meta.url': '__immichProxyUrl' },
  // the directive first: after any other statement it would not make the file strict
  banner: { js: "'use strict'; const __immichProxyUrl = require('node:url').pathToFileURL(__filename).href;" },
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'external',
  logLevel: 'warning'
})
