// The real Immich CLI (@immich/cli 3.x), which needs Node 22 or later: on an older Node the tests
// run it with the Node of the npm package `node@<major>` (as .ci/run tests the current LTS).
// Both are installed once per version into the temporary directory with the npm that runs the
// tests, not into the project: the CLI's engines would make `npm ci` warn on Node 20
// (EBADENGINE). Like the Chromium of helpers/browser.ts, each process installs into a directory
// of its own and renames it into place, so a directory under the final name is complete.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const IMMICH_CLI_VERSION = '3.2.2'
const NODE_MAJOR = 26

export interface ImmichCli {
  /** node and the CLI's entry, to spawn as [node, cli, ...args] */
  command: [string, string]
}

function npmInstall (prefix: string, packages: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', prefix, ...packages],
      { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => error === null ? resolve() : reject(new Error(`npm install ${packages.join(' ')} failed: ${error.message}\n${stderr}`)))
  })
}

export async function immichCli (): Promise<ImmichCli> {
  const ownNodeRunsIt = Number(process.versions.node.split('.')[0]) >= 22
  const packages = [`@immich/cli@${IMMICH_CLI_VERSION}`, ...(ownNodeRunsIt ? [] : [`node@${NODE_MAJOR}`])]
  const home = join(tmpdir(), `immich-proxy-${packages.join('-').replace(/[@/]/g, '_')}`)
  const found = (): ImmichCli => ({
    command: [ownNodeRunsIt ? process.execPath : join(home, 'node_modules', '.bin', 'node'), join(home, 'node_modules', '@immich', 'cli', 'bin', 'immich')]
  })
  if (existsSync(join(home, 'node_modules', '@immich', 'cli', 'package.json'))) return found()
  const staging = mkdtempSync(`${home}.installing-`)
  try {
    await npmInstall(staging, packages)
    renameSync(staging, home)
  } catch (error) {
    if (!existsSync(join(home, 'node_modules', '@immich', 'cli', 'package.json'))) throw error
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  return found()
}
