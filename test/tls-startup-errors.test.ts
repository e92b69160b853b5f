// The real entry point with TLS settings that cannot serve: what an operator sees in `docker logs`.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { runServer, type ServerExit } from './helpers/ops.js'

/** The real entry point; port 1 is never reached: every case fails before listening. */
async function serverWith (env: Record<string, string>): Promise<ServerExit> {
  return await runServer({ HOST: '127.0.0.1', PORT: '1', ADMIN_PORT: 'off', UPSTREAM_URL: 'http://127.0.0.1:2283', ...env })
}

t.test('each unusable pair stops start-up with exit code 1 and one line naming the variable', async t => {
  const [a, b] = await Promise.all([makeCertificate('a.immich.test'), makeCertificate('b.immich.test')])
  const dir = t.testdir()
  const good = writeCertificateFiles(dir, a)
  mkdirSync(join(dir, 'b'))
  const other = writeCertificateFiles(join(dir, 'b'), b)
  const missing = join(dir, 'missing.pem')
  // root reads any file whatever its mode: a directory is a path no one can read as a file
  const unreadable = join(dir, 'a-directory.pem')
  mkdirSync(unreadable)
  const notPem = join(dir, 'not.pem')
  writeFileSync(notPem, 'this is not a certificate\n')

  const cases: Array<[string, Record<string, string>, string]> = [
    ['a missing certificate file', { TLS_CERT_FILE: missing, TLS_KEY_FILE: good.keyFile },
      `TLS_CERT_FILE: cannot read "${missing}" (ENOENT)`],
    ['a missing key file', { TLS_CERT_FILE: good.certFile, TLS_KEY_FILE: missing },
      `TLS_KEY_FILE: cannot read "${missing}" (ENOENT)`],
    ['an unreadable key file', { TLS_CERT_FILE: good.certFile, TLS_KEY_FILE: unreadable },
      `TLS_KEY_FILE: cannot read "${unreadable}" (EISDIR)`],
    ['a certificate file that is not PEM', { TLS_CERT_FILE: notPem, TLS_KEY_FILE: good.keyFile },
      `TLS_CERT_FILE: "${notPem}" is not a PEM certificate`],
    ['a key file that is not PEM', { TLS_CERT_FILE: good.certFile, TLS_KEY_FILE: notPem },
      `TLS_KEY_FILE: "${notPem}" is not a PEM private key (or it is encrypted)`],
    ['a key that does not match the certificate', { TLS_CERT_FILE: good.certFile, TLS_KEY_FILE: other.keyFile },
      `TLS_KEY_FILE: "${other.keyFile}" does not match the certificate in "${good.certFile}"`],
    ['only TLS_CERT_FILE', { TLS_CERT_FILE: good.certFile },
      'TLS_KEY_FILE="" is empty while TLS_CERT_FILE is set; HTTPS needs both files, e.g. TLS_KEY_FILE=/etc/letsencrypt/live/immich.example.org/privkey.pem'],
    ['only TLS_KEY_FILE', { TLS_KEY_FILE: good.keyFile },
      'TLS_CERT_FILE="" is empty while TLS_KEY_FILE is set; HTTPS needs both files, e.g. TLS_CERT_FILE=/etc/letsencrypt/live/immich.example.org/fullchain.pem'],
    ['ACME_STORAGE under a file', { ACME_DOMAINS: 'photos.example.org', ACME_STORAGE: join(notPem, 'acme') },
      `ACME_STORAGE: "${join(notPem, 'acme')}" cannot be written (ENOTDIR): the account and certificates are kept there. Give it to the user the proxy runs as (the image: node, uid 1000; docker-compose.yml's named volume is), or choose another folder`]
  ]
  // two at a time: each child is a whole tsx start-up
  for (let i = 0; i < cases.length; i += 2) {
    const exits = await Promise.all(cases.slice(i, i + 2).map(([, env]) => serverWith(env)))
    exits.forEach((exit, j) => {
      const [name, , line] = cases[i + j]
      t.equal(exit.code, 1, `${name}: exit code 1`)
      t.equal(exit.stdout, '', `${name}: nothing started, nothing logged`)
      t.equal(exit.stderr, `immich-proxy: ${line}\n`, `${name}: one line`)
    })
  }
})
