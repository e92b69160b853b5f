// The server as users run it (npm start, the container, the immich-proxy bin): src/server.ts and
// everything it imports in one ES module, dist/immich-proxy.mjs. Node then reads one file instead
// of ~700 (fastify alone pulls in all of ajv and semver), which takes about a third off the
// start-up to the first answer (issue 5). The library build (dist/src, dist/plugins) stays
// unbundled for apps that embed the plugins.
//
// - pino stays outside: its worker transports (pino-pretty on a terminal) load files by path
//   from pino's own directory, which a bundle does not have.
// - The banner gives the bundled CommonJS code (fastify, undici…) a real `require` for Node's
//   built-in modules and for pino, which an ES module otherwise lacks.
// - Whitespace and syntax are minified, names are not: stack traces and Fastify's plugin names
//   stay readable, and the source map (node --enable-source-maps) leads back to the sources.
import { build } from 'esbuild'

await build({
  entryPoints: ['src/server.ts'],
  outfile: 'dist/immich-proxy.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['pino', 'pino-pretty'],
  banner: { js: "import { createRequire as __immichProxyRequire } from 'node:module'; const require = __immichProxyRequire(import.meta.url);" },
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'external',
  logLevel: 'warning'
})
