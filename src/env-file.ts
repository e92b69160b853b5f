// `.env`, read only when the proxy runs as a program (an embedding host owns its environment).
// Variables already in the environment win, as with `node --env-file`.
import { readFileSync } from 'node:fs'

/** A `.env` that exists but cannot be used: fit to print as it is, one line. */
export class EnvFileError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'EnvFileError'
  }
}

// `NAME=value` or `export NAME=value`, as Node's parser (and dotenv) reads them.
const ASSIGNMENT = /^(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=\s*(.*)$/

/**
 * Lines (1-based) that are neither blank, a comment nor an assignment. Node's parser skips them
 * without a word, so `ACCESS_KEY: s3cret` (YAML habits) would leave the proxy unguarded. Lines
 * inside a quoted value that spans lines are part of that value.
 */
export function malformedLines (text: string): number[] {
  const bad: number[] = []
  let quote: string | undefined
  text.split(/\r?\n/).forEach((line, index) => {
    if (quote !== undefined) {
      if (line.includes(quote)) quote = undefined
      return
    }
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) return
    const assignment = ASSIGNMENT.exec(trimmed)
    if (assignment === null) {
      bad.push(index + 1)
      return
    }
    const value = assignment[1]
    const opening = value[0]
    if ((opening === '"' || opening === "'" || opening === '`') && !value.slice(1).includes(opening)) quote = opening
  })
  return bad
}

/**
 * False when there is no such file; throws EnvFileError when it cannot be read or has a line that
 * is not a setting (naming the line number only: the line may hold a key).
 */
export function loadEnvFile (path: string): boolean {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return false
    throw new EnvFileError(`${path} cannot be read (${code ?? (error as Error).message})`)
  }
  const bad = malformedLines(text)
  if (bad.length > 0) {
    throw new EnvFileError(`${path}: line${bad.length > 1 ? 's' : ''} ${bad.join(', ')} ${bad.length > 1 ? 'are' : 'is'} not NAME=value, e.g. ACCESS_KEY=s3cret-key-one`)
  }
  process.loadEnvFile(path)
  return true
}
