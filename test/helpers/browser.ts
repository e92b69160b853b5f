// A real Chromium for the browser tests, brought by `npm ci` alone: @sparticuz/chromium ships a
// brotli-compressed headless Chromium and the NSS libraries it links against inside its package
// (no install script, no download), and playwright-core drives it over CDP.
//
// The package's own executablePath() is not used: it unpacks to the fixed /tmp/chromium and
// reuses whatever is there, so two test files launching at once can exec a
// half-written file (ETXTBSY), an interrupted unpack stays broken, and its libraries are only
// put in place on AWS Lambda. Its args are not used either: they turn off web security and site
// isolation, which the cross-site test relies on.
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { brotliDecompressSync, createBrotliDecompress } from 'node:zlib'
import { chromium, type BrowserContext } from 'playwright-core'
import type { Test } from 'tap'

const PACKAGE = '@sparticuz/chromium'

/** The regular files of a ustar archive (the package's al2023.tar: a flat list of libraries). */
function untar (archive: Buffer, into: string): void {
  for (let at = 0; at + 512 <= archive.length && archive[at] !== 0;) {
    const field = (start: number, length: number): string => archive.toString('latin1', at + start, at + start + length).replace(/\0.*$/s, '')
    const size = parseInt(field(124, 12), 8)
    const type = field(156, 1)
    if (type === '0' || type === '') {
      writeFileSync(join(into, basename(field(0, 100))), archive.subarray(at + 512, at + 512 + size), { mode: parseInt(field(100, 8), 8) })
    }
    at += 512 + Math.ceil(size / 512) * 512
  }
}

/**
 * Unpacks the package's Chromium once per package version into the temporary directory and
 * returns the executable and its library directory. Each process unpacks into a directory of
 * its own and renames it into place, so a directory under the final name is always complete.
 */
async function unpackChromium (): Promise<{ executable: string, libraries: string }> {
  const bin = join(dirname(createRequire(import.meta.url).resolve(PACKAGE)), '..', '..', 'bin')
  const { version } = JSON.parse(readFileSync(join(bin, '..', 'package.json'), 'utf8')) as { version: string }
  const home = join(tmpdir(), `immich-proxy-chromium-${version}`)
  const found = { executable: join(home, 'chromium'), libraries: join(home, 'lib') }
  if (existsSync(found.executable)) return found

  const staging = mkdtempSync(`${home}.unpacking-`)
  try {
    await pipeline(createReadStream(join(bin, 'chromium.br')), createBrotliDecompress(), createWriteStream(join(staging, 'chromium'), { mode: 0o755 }))
    mkdirSync(join(staging, 'lib'))
    untar(brotliDecompressSync(readFileSync(join(bin, 'al2023.tar.br'))), join(staging, 'lib'))
    renameSync(staging, home)
  } catch (error) {
    // another process got there first (the rename fails onto a full directory): use its copy
    if (!existsSync(found.executable)) throw error
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  return found
}

/**
 * A headless Chromium with a fresh profile, closed when the test ends. A browser that cannot
 * start fails the test, naming what was tried: the browser tests are never skipped.
 */
export async function launchBrowser (t: Test, options: { ignoreHTTPSErrors?: boolean } = {}): Promise<BrowserContext> {
  let executable = PACKAGE
  let context: BrowserContext
  const profile = mkdtempSync(join(tmpdir(), 'immich-proxy-chromium-profile-'))
  try {
    const unpacked = await unpackChromium()
    executable = unpacked.executable
    context = await chromium.launchPersistentContext(profile, {
      executablePath: executable,
      headless: true,
      ...options,
      // the package's libraries first: the binary needs nothing from the system but glibc
      env: { ...process.env, LD_LIBRARY_PATH: [unpacked.libraries, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
      // playwright-core adds --no-sandbox (tests run as root) and turns off background traffic;
      // no GPU (the package's SwiftShader is not unpacked); no QUIC, so that every request is one
      // the proxy's TCP listeners see
      args: ['--disable-gpu', '--disable-quic']
    })
  } catch (error) {
    rmSync(profile, { recursive: true, force: true })
    throw new Error(`Chromium from ${PACKAGE} (${executable}) did not start: ${(error as Error).message}`, { cause: error })
  }
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  context.setDefaultTimeout(15_000)
  return context
}
