/**
 * The ONE way kata-lcm runs helm: every call goes through `runHelm`, which turns any failure
 * (missing binary, non-zero exit, signal) into a HelmError carrying argv, exit code, the stderr
 * tail and a suggestion written once here.
 */
import createDebug from 'debug'
import { execa } from 'execa'
import { HelmError } from '../lifecycle/errors.js'
import { SUPPORTED_HELM } from '../lifecycle/checks/helm-version.js'
import type { HelmVersion } from '../ports/helm.port.js'

const debug = createDebug('kata-lcm:helm')

/** Lines of stderr kept in a HelmError: enough for helm's error and its context. */
export const STDERR_TAIL_LINES = 20

/** The last `lines` non-empty lines of `text`. Pure. */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .slice(-lines)
    .join('\n')
}

/** What to do about a helm failure, from its stderr. Pure; may be empty. */
export function helmSuggestions(stderr: string, argv: string[], missingBinary: boolean): string[] {
  if (missingBinary)
    return [`install ${SUPPORTED_HELM} (https://helm.sh/docs/intro/install/) or set HELM_BIN to its path`]
  // argv is `<command> RELEASE ...` or `get <what> RELEASE ...` with `-n NAMESPACE` somewhere.
  const release = ['upgrade', 'install', 'status', 'history', 'rollback'].includes(argv[0] ?? '')
    ? argv[1]
    : argv[0] === 'get'
      ? argv[2]
      : undefined
  const ns = argv.includes('-n') ? argv[argv.indexOf('-n') + 1] : undefined
  const where = release ? `${release}${ns ? ` -n ${ns}` : ''}` : 'RELEASE -n NAMESPACE'
  const out: string[] = []
  if (/another operation \(install\/upgrade\/rollback\) is in progress/.test(stderr)) {
    out.push(
      `the release is stuck in a pending-* state from an interrupted helm run: see \`helm history ${where}\`, then \`helm rollback ${where} <last deployed revision>\` and rerun`,
    )
  }
  if (/timed out|context deadline exceeded/i.test(stderr)) {
    out.push(
      "helm timed out waiting: raise the helm timeout, and check the release's pods and hooks (kubectl get pods,jobs -n NAMESPACE)",
    )
  }
  if (
    /version .* not found|matching .* not found|not found in .* (index|repository)|manifest unknown|failed to .*: not found|path ".*" not found/i.test(
      stderr,
    )
  ) {
    out.push(
      'the chart or version was not found: check the chart reference and version (`helm show chart CHART --version VERSION`; for a repo, `helm repo update`)',
    )
  }
  if (/has no deployed releases/.test(stderr)) {
    out.push(
      `the release has no deployed revision: see \`helm history ${where}\`; a release that never installed must be installed (or fixed) by hand first`,
    )
  }
  if (/Kubernetes cluster unreachable|connection refused/i.test(stderr)) {
    out.push('helm cannot reach the API server: check --kubeconfig/--context')
  }
  if (/forbidden/i.test(stderr)) {
    out.push(
      "RBAC refused helm: the identity needs the rights the chart's objects require (and secrets in the release namespace)",
    )
  }
  return out
}

/** What a successful helm run printed. */
export interface HelmResult {
  stdout: string
  stderr: string
}

/**
 * Runs `bin argv...` and returns its output; throws a HelmError on a missing binary, a non-zero
 * exit or a signal. No shell is involved (argv is passed as is); nothing is read from stdin.
 */
export async function runHelm(bin: string, argv: string[]): Promise<HelmResult> {
  if (bin.trim() === '') {
    throw new HelmError('HELM_BIN is set but empty, so there is no helm to run', [bin, ...argv], undefined, '', {
      suggestions: ["unset HELM_BIN to use helm from PATH, or set it to the helm binary's path"],
    })
  }
  const started = Date.now()
  debug('%s %s', bin, argv.join(' '))
  const result = await execa(bin, argv, { reject: false, stdin: 'ignore', stripFinalNewline: false })
  const ms = Date.now() - started
  const stdout = String(result.stdout ?? '')
  const stderr = String(result.stderr ?? '')
  if (!result.failed) {
    debug('%s %s: ok in %d ms', bin, argv[0] ?? '', ms)
    return { stdout, stderr }
  }
  const missingBinary = result.code === 'ENOENT'
  const stderrTail = tail(stderr)
  debug(
    '%s %s: failed in %d ms (exit %s): %s',
    bin,
    argv[0] ?? '',
    ms,
    result.exitCode ?? result.signal ?? result.code,
    stderrTail,
  )
  const command = ['get', 'show'].includes(argv[0] ?? '') ? argv.slice(0, 2).join(' ') : (argv[0] ?? '')
  const reason = missingBinary
    ? `helm binary "${bin}" not found`
    : `helm ${command} failed (${result.exitCode === undefined ? (result.signal ?? result.code ?? 'error') : `exit ${result.exitCode}`})`
  const firstError =
    stderrTail
      .split('\n')
      .reverse()
      .find((l) => /^Error:/.test(l)) ?? stderrTail.split('\n').pop()
  const message = firstError && !missingBinary ? `${reason}: ${firstError.replace(/^Error:\s*/, '')}` : reason
  throw new HelmError(message, [bin, ...argv], result.exitCode, stderrTail, {
    cause: result.cause ?? undefined,
    suggestions: [
      ...helmSuggestions(stderr, argv, missingBinary),
      'run with DEBUG=kata-lcm:helm for the helm commands run',
    ],
  })
}

/**
 * The semantic version in what `helm version --short` (or `--template '{{.Version}}'`) printed:
 * `v3.10.0+gabc` -> `3.10.0`, `v4.1.4` -> `4.1.4`, `v4.0.0-rc.1+g1` -> `4.0.0-rc.1`, a source build's
 * `v3.14` -> `3.14.0`, helm 2's `Client: v2.16.1+g...` -> `2.16.1`; undefined when there is none. Pure.
 */
export function parseHelmVersion(printed: string): string | undefined {
  const match = /(?:^|[\s:"])v?(\d+)\.(\d+)(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(?=$|[\s+"])/.exec(printed.trim())
  if (!match) return undefined
  const [, major, minor, patch, pre] = match
  return `${Number(major)}.${Number(minor)}.${Number(patch ?? 0)}${pre ?? ''}`
}

/** Read-only: `bin version --short` (with `extra`, e.g. the kube flags), parsed; a HelmError when it cannot run. */
export async function readHelmVersion(bin: string, extra: string[] = []): Promise<HelmVersion> {
  const printed = (await runHelm(bin, ['version', '--short', ...extra])).stdout.trim()
  return { bin, printed, version: parseHelmVersion(printed) }
}
