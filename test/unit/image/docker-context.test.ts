/**
 * `docker build .` sends the build context through `.dockerignore`; a COPY of a file it leaves out
 * fails the build ("not found"). No Docker engine runs here, so this reads `.dockerignore` the way
 * docker does (moby/buildkit's ignorefile.ReadAll, then moby/patternmatcher: patterns in order, the
 * last match wins, `!` re-includes, `*`, `?` and `**` globs, a pattern that matches a directory
 * covers everything in it) and checks that every file each COPY of the Dockerfile takes from the
 * context is in it. The image itself is checked against the Dockerfile by test/e2e/argo/image.e2e.test.ts.
 */
import { globSync, readFileSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

/** Go's filepath.Clean on a slash path: `.`, `..` and doubled or trailing slashes resolved. */
function clean(p: string): string {
  const n = path.posix.normalize(p)
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n
}

/** buildkit's ignorefile.ReadAll: `#` lines and blank ones dropped, each pattern cleaned, a leading `/` dropped. */
function readDockerignore(text: string): string[] {
  const patterns: string[] = []
  for (const [i, raw] of text.split('\n').entries()) {
    const line = (i === 0 ? raw.replace(/^\uFEFF/, '') : raw).replace(/\r$/, '')
    if (line.startsWith('#')) continue
    let p = line.trim()
    if (p === '') continue
    const invert = p.startsWith('!')
    if (invert) p = p.slice(1).trim()
    if (p !== '') {
      p = clean(p)
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1)
    }
    patterns.push(invert ? `!${p}` : p)
  }
  return patterns
}

type Matcher = (file: string) => boolean

/** One pattern as patternmatcher's Pattern.compile and Pattern.match treat it. */
function compile(cleaned: string): Matcher {
  let re = '^'
  let kind: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact'
  let at = 0
  for (let token = 0; at < cleaned.length; token++) {
    const ch = cleaned[at++]!
    if (ch === '*' && cleaned[at] === '*') {
      at++
      if (cleaned[at] === '/') at++ // `**/` is `**`
      if (at >= cleaned.length) {
        // `**` at the end: everything below, as in .gitignore
        if (kind === 'exact') kind = 'prefix'
        else {
          re += '.*'
          kind = 'regexp'
        }
      } else {
        re += '(.*/)?'
        kind = 'regexp'
      }
      if (token === 0) kind = 'suffix'
    } else if (ch === '*') {
      re += '[^/]*'
      kind = 'regexp'
    } else if (ch === '?') {
      re += '[^/]'
      kind = 'regexp'
    } else if ('.+()|{}$'.includes(ch)) {
      re += `\\${ch}`
    } else if (ch === '\\') {
      // escapes the next character; a trailing one stands for itself
      re += at < cleaned.length ? `\\${cleaned[at++]}` : '\\\\'
    } else if (ch === '[' || ch === ']') {
      re += ch
      kind = 'regexp'
    } else {
      re += ch
    }
  }
  if (kind === 'exact') return (file) => file === cleaned
  if (kind === 'prefix') return (file) => file.startsWith(cleaned.slice(0, -2))
  if (kind === 'suffix') {
    const suffix = cleaned.slice(2)
    return (file) => file.endsWith(suffix) || (suffix.startsWith('/') && file === suffix.slice(1))
  }
  const regexp = new RegExp(`${re}$`)
  return (file) => regexp.test(file)
}

/**
 * patternmatcher's MatchesOrParentMatches over `.dockerignore`'s patterns: whether `file` (a slash
 * path relative to the context) is left out of the build context.
 */
function dockerignored(patterns: readonly string[]): Matcher {
  const compiled = patterns
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map(clean)
    .map((p) => ({ exclusion: p.startsWith('!'), match: compile(p.replace(/^!/, '')) }))
  return (file) => {
    const parent = path.posix.dirname(file)
    const parentDirs = parent.split('/')
    let matched = false
    for (const pattern of compiled) {
      // An exclusion can only undo a match, an inclusion only make one.
      if (pattern.exclusion !== matched) continue
      let match = pattern.match(file)
      for (let i = 0; !match && parent !== '.' && i < parentDirs.length; i++)
        match = pattern.match(parentDirs.slice(0, i + 1).join('/'))
      if (match) matched = !pattern.exclusion
    }
    return matched
  }
}

/** The context sources of every COPY and ADD (not `--from=`, not heredocs), one entry per instruction. */
function copySources(dockerfile: string): { instruction: string; sources: string[] }[] {
  const lines = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
  const out: { instruction: string; sources: string[] }[] = []
  for (const line of lines) {
    const [keyword, ...rest] = line.split(/\s+/)
    if (!/^(COPY|ADD)$/i.test(keyword!)) continue
    const flags = rest.filter((w) => w.startsWith('--'))
    if (flags.some((f) => f.startsWith('--from='))) continue
    const body = line
      .slice(keyword!.length)
      .trim()
      .replace(/^(--\S+\s+)+/, '')
    const args = body.startsWith('[') ? (JSON.parse(body) as string[]) : body.split(/\s+/)
    const sources = args.slice(0, -1).filter((s) => !s.startsWith('<<'))
    out.push({ instruction: line, sources: sources.map((s) => clean(s.replace(/^\/+/, ''))) })
  }
  return out
}

/** The files a COPY source names in the context: a file, every file under a directory, or a glob's. */
function contextFiles(source: string): string[] {
  const named = /[*?[]/.test(source) ? globSync(source, { cwd: ROOT }) : [source]
  return named.flatMap((rel) => {
    const full = path.join(ROOT, rel)
    if (!statSync(full, { throwIfNoEntry: false })?.isDirectory()) return [rel]
    return readdirSync(full, { recursive: true, withFileTypes: true })
      .filter((e) => !e.isDirectory())
      .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
  })
}

describe('.dockerignore, read as docker reads it', () => {
  const ignored = (text: string, file: string) => dockerignored(readDockerignore(text))(file)

  it.each([
    // [.dockerignore, file, left out of the context]
    ['scripts\n!scripts/image/app.sh\n', 'scripts/image/app.sh', false],
    ['scripts\n!scripts/image/app.sh\n', 'scripts/build.mjs', true],
    ['scripts\n!scripts/image/app.sh\n', 'scripts/image/build-local.sh', true],
    // the last match wins
    ['!a/b\na\n', 'a/b', true],
    ['a\n!a\n', 'a/b/c', false],
    // a directory's pattern covers what is in it; leading and trailing slashes are dropped
    ['dist\n', 'dist/commands/x.js', true],
    ['/dist/\n', 'dist/commands/x.js', true],
    ['dist/\n', 'src/dist.ts', false],
    ['./node_modules//\n', 'node_modules/a/package.json', true],
    // globs: `*` and `?` within one path element, `**` across any number
    ['*/temp*\n', 'somedir/temporary.txt', true],
    ['*/temp*\n', 'temporary.txt', false],
    ['*/*/temp*\n', 'a/b/temp.txt', true],
    ['temp?\n', 'tempa', true],
    ['temp?\n', 'tempab', false],
    ['**/*.go\n', 'c.go', true],
    ['**/*.go\n', 'a/b/c.go', true],
    ['**/*.go\n', 'a/b/c.gox', false],
    ['**/vendor\n', 'vendor/x', true],
    ['**/vendor\n', 'a/vendor/x', true],
    ['a/**\n', 'a/b/c', true],
    ['*.log\n', 'x.log', true],
    ['*.log\n', 'sub/x.log', false],
    // docker's documented example: only READMEs, but not README-secret.md
    ['*.md\n!README*.md\nREADME-secret.md\n', 'README.md', false],
    ['*.md\n!README*.md\nREADME-secret.md\n', 'README-secret.md', true],
    ['*.md\n!README*.md\nREADME-secret.md\n', 'CHANGES.md', true],
    // comments (only at the start of a line) and blank lines
    ['# src\n\n  \nbin\n', 'src/x.ts', false],
    ['# src\n\n  \nbin\n', 'bin/run.js', true],
  ] as const)('%j: %s left out: %s', (text, file, expected) => {
    expect(ignored(text, file)).toBe(expected)
  })
})

describe('the Dockerfile and .dockerignore', () => {
  it("every file a COPY takes from the build context is in it (docker build . would fail: 'not found')", () => {
    const ignored = dockerignored(readDockerignore(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')))
    const copies = copySources(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))
    expect(copies.length).toBeGreaterThan(3)
    const missing: string[] = []
    for (const { instruction, sources } of copies) {
      for (const source of sources) {
        const files = contextFiles(source)
        if (files.length === 0) missing.push(`${source} (no such file; ${instruction})`)
        for (const file of files) if (ignored(file)) missing.push(`${file} (${instruction})`)
      }
    }
    expect(missing).toEqual([])
  })
})

describe('the Dockerfile and the test bed', () => {
  it("builds the helm the tests run (versions.env's HELM_VERSION), with a Go at least as new as helm's go.mod asks", () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
    const versions = readFileSync(path.join(ROOT, 'scripts/testbed/versions.env'), 'utf8')
    const helm = /^HELM_VERSION=(\S+)$/m.exec(versions)?.[1]
    expect(helm).toBeDefined()
    expect(dockerfile).toMatch(new RegExp(`^ARG HELM_VERSION=${helm!.replace(/\./g, '\\.')}$`, 'm'))
    // helm v4.2 and later need Go 1.26 (their go.mod).
    expect(Number(/^ARG GO_VERSION=1\.(\d+)$/m.exec(dockerfile)?.[1])).toBeGreaterThanOrEqual(26)
  })
})
