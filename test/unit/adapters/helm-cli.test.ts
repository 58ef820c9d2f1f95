/**
 * HelmCli against a fake `helm`: a shell script in a temp dir that records its argv, copies the
 * values file it is given, and answers like helm v4 (or fails like it). No module mocking: the
 * real adapter spawns the real script through execa.
 */
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HelmCli } from '../../../src/adapters/helm-cli.adapter.js'
import { HelmError } from '../../../src/lifecycle/errors.js'

let dir: string
let helm: string

// One argv per call: arguments joined by a unit separator, one call per line.
const FAKE_HELM = `#!/usr/bin/env bash
set -u
DIR="$(cd "$(dirname "$0")" && pwd)"
(IFS=$'\\x1f'; echo "$*") >> "$DIR/calls.log"
case "$1 \${2:-}" in
  "version --short") printf '%s\\n' "\${FAKE_HELM_VERSION:-v4.1.4+gfake}"; exit 0 ;;
  "get metadata")
    case "$3" in
      missing) echo 'Error: release: not found' >&2; exit 1 ;;
      *) echo '{"name":"'"$3"'","chart":"kata-deploy","version":"3.30.0","appVersion":"3.30.0","namespace":"kube-system","revision":4,"status":"deployed","deployedAt":"2025-01-01T00:00:00Z"}'; exit 0 ;;
    esac ;;
  "get values")
    [ "$3" = unreachable ] && { echo 'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp 127.0.0.1:6443: connect: connection refused' >&2; exit 1; }
    case "$*" in
      *--all*) echo '{"image":{"tag":"3.30.0"},"debug":false}' ;;
      *) echo 'null' ;;
    esac
    exit 0 ;;
  "show chart") printf 'apiVersion: v2\\nname: kata-deploy\\nversion: 3.31.0\\nappVersion: "3.31.0"\\n'; exit 0 ;;
esac
case "$1" in
  status)
    [ "$2" = missing ] && { echo 'Error: release: not found' >&2; exit 1; }
    echo '{"name":"'"$2"'","info":{"first_deployed":"2025-01-01T00:00:00.123456789Z","last_deployed":"2025-01-02T00:00:00Z","status":"deployed"},"manifest":"---","version":4,"namespace":"kube-system"}'
    exit 0 ;;
  history)
    [ "$2" = missing ] && { echo 'Error: release: not found' >&2; exit 1; }
    echo '[{"revision":2,"updated":"2025-01-02T00:00:00Z","status":"deployed","chart":"kata-deploy-3.31.0-rc1","app_version":"3.31.0","description":"Upgrade complete"},{"revision":1,"status":"superseded","chart":"kata-deploy-3.30.0","app_version":"3.30.0","description":"Install complete"}]'
    exit 0 ;;
  upgrade)
    prev=""
    for a in "$@"; do
      if [ "$prev" = "-f" ]; then cp "$a" "$DIR/values-seen.json"; stat -c %a "$a" > "$DIR/values-mode"; echo "$a" > "$DIR/values-path"; fi
      prev="$a"
    done
    if [ "$2" = stuck ]; then
      for i in $(seq 1 30); do echo "debug line $i" >&2; done
      echo 'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress' >&2
      exit 1
    fi
    echo "Release \\"$2\\" has been upgraded. Happy Helming!"
    exit 0 ;;
esac
echo "Error: unknown command $*" >&2
exit 64
`

async function calls(): Promise<string[][]> {
  const log = join(dir, 'calls.log')
  if (!existsSync(log)) return []
  return (await readFile(log, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\x1f'))
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kata-lcm-fake-helm-'))
  helm = join(dir, 'helm')
  await writeFile(helm, FAKE_HELM)
  await chmod(helm, 0o755)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function resetCalls() {
  await rm(join(dir, 'calls.log'), { force: true })
}

describe('HelmCli', () => {
  const cli = () => new HelmCli({ bin: helm, kubeconfig: '/tmp/kc.yaml', kubeContext: 'ctx-a' })

  it('runs `version --short` with the kube flags on every call', async () => {
    await resetCalls()
    expect(await cli().version()).toEqual({ bin: helm, printed: 'v4.1.4+gfake', version: '4.1.4' })
    expect(await calls()).toEqual([['version', '--short', '--kubeconfig', '/tmp/kc.yaml', '--kube-context', 'ctx-a']])
  })

  it.each([
    ['v3.10.0+gce66412', '3.10.0'],
    ['v4.1.4', '4.1.4'],
    ['v3.14.0-rc.1+g1a2b3c', '3.14.0-rc.1'],
    // A `go install` build without the release's ldflags prints its source's default, major.minor.
    ['v3.14', '3.14.0'],
    ['Client: v2.16.1+gbbdfe5e', '2.16.1'],
    ['not a version', undefined],
  ])('reads the version in `helm version --short` printing %j', async (printed, version) => {
    process.env.FAKE_HELM_VERSION = printed
    try {
      expect(await new HelmCli({ bin: helm }).version()).toEqual({ bin: helm, printed, version })
    } finally {
      delete process.env.FAKE_HELM_VERSION
    }
  })

  it('omits kube flags that were not given', async () => {
    await resetCalls()
    await new HelmCli({ bin: helm }).version()
    expect(await calls()).toEqual([['version', '--short']])
  })

  it('reads a release from `get metadata -o json`', async () => {
    await resetCalls()
    expect(await cli().release('kata-deploy', 'kube-system')).toEqual({
      name: 'kata-deploy',
      namespace: 'kube-system',
      revision: 4,
      status: 'deployed',
      chartName: 'kata-deploy',
      chartVersion: '3.30.0',
      appVersion: '3.30.0',
      deployedAt: '2025-01-01T00:00:00Z',
    })
    expect((await calls())[0]?.slice(0, 7)).toEqual([
      'get',
      'metadata',
      'kata-deploy',
      '-n',
      'kube-system',
      '-o',
      'json',
    ])
  })

  it('returns undefined for a release that does not exist', async () => {
    expect(await cli().release('missing', 'kube-system')).toBeUndefined()
    expect(await cli().history('missing', 'kube-system')).toEqual([])
  })

  it("names the release's install by `status -o json`'s info.first_deployed (undefined when there is no release)", async () => {
    expect(await cli().firstDeployed('kata-deploy', 'kube-system')).toBe('2025-01-01T00:00:00.123456789Z')
    expect(await cli().firstDeployed('missing', 'kube-system')).toBeUndefined()
  })

  it('parses history oldest first, splitting name-version chart refs', async () => {
    expect(await cli().history('kata-deploy', 'kube-system')).toEqual([
      {
        revision: 1,
        status: 'superseded',
        chartName: 'kata-deploy',
        chartVersion: '3.30.0',
        appVersion: '3.30.0',
        description: 'Install complete',
      },
      {
        revision: 2,
        status: 'deployed',
        chartName: 'kata-deploy',
        chartVersion: '3.31.0-rc1',
        appVersion: '3.31.0',
        description: 'Upgrade complete',
      },
    ])
  })

  it('reads user values (`null` => {}) and all values at a revision', async () => {
    await resetCalls()
    expect(await cli().values('kata-deploy', 'kube-system', { all: false })).toEqual({})
    expect(await cli().values('kata-deploy', 'kube-system', { all: true, revision: 3 })).toEqual({
      image: { tag: '3.30.0' },
      debug: false,
    })
    const [user, all] = await calls()
    expect(user).toEqual([
      'get',
      'values',
      'kata-deploy',
      '-n',
      'kube-system',
      '-o',
      'json',
      '--kubeconfig',
      '/tmp/kc.yaml',
      '--kube-context',
      'ctx-a',
    ])
    expect(all?.slice(0, 10)).toEqual([
      'get',
      'values',
      'kata-deploy',
      '-n',
      'kube-system',
      '-o',
      'json',
      '--all',
      '--revision',
      '3',
    ])
  })

  it('parses `show chart` YAML', async () => {
    await resetCalls()
    expect(await cli().showChart('oci://example/kata-deploy', '3.31.0')).toEqual({
      name: 'kata-deploy',
      version: '3.31.0',
      appVersion: '3.31.0',
    })
    expect((await calls())[0]?.slice(0, 5)).toEqual([
      'show',
      'chart',
      'oci://example/kata-deploy',
      '--version',
      '3.31.0',
    ])
  })

  it('upgrades with the values in a 0600 file that is gone afterwards', async () => {
    await resetCalls()
    const values = { image: { tag: '3.31.0' }, env: { debug: 'on' }, nodes: ['a', 'b'] }
    await cli().upgrade({
      release: 'kata-deploy',
      namespace: 'kube-system',
      chart: '/charts/kata-deploy-3.31.0.tgz',
      version: '3.31.0',
      values,
      noHooks: true,
      timeout: '10m',
    })
    const [argv] = await calls()
    const file = (await readFile(join(dir, 'values-path'), 'utf8')).trim()
    expect(argv).toEqual([
      'upgrade',
      'kata-deploy',
      '/charts/kata-deploy-3.31.0.tgz',
      '-n',
      'kube-system',
      '--version',
      '3.31.0',
      '--reset-values',
      '-f',
      file,
      '--no-hooks',
      '--timeout',
      '10m',
      '--kubeconfig',
      '/tmp/kc.yaml',
      '--kube-context',
      'ctx-a',
    ])
    expect(JSON.parse(await readFile(join(dir, 'values-seen.json'), 'utf8'))).toEqual(values)
    expect((await readFile(join(dir, 'values-mode'), 'utf8')).trim()).toBe('600')
    expect(existsSync(file)).toBe(false)
    await expect(stat(join(file, '..'))).rejects.toThrow()
  })

  it('turns a failed upgrade into a HelmError with argv, exit code, stderr tail and a suggestion', async () => {
    await rm(join(dir, 'values-path'), { force: true })
    const error = await cli()
      .upgrade({ release: 'stuck', namespace: 'kube-system', chart: 'kata-deploy', values: {} })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toBeInstanceOf(HelmError)
    const e = error as HelmError
    expect(e.helmExitCode).toBe(1)
    expect(e.argv.slice(0, 3)).toEqual([helm, 'upgrade', 'stuck'])
    expect(e.message).toContain('another operation (install/upgrade/rollback) is in progress')
    const tail = e.stderrTail.split('\n')
    expect(tail).toHaveLength(20)
    expect(tail[0]).toBe('debug line 12')
    expect(tail.at(-1)).toContain('another operation')
    expect(e.suggestions.join('\n')).toMatch(/helm history stuck -n kube-system.*helm rollback stuck -n kube-system/)
    // The values file is removed on failure too.
    const file = (await readFile(join(dir, 'values-path'), 'utf8')).trim()
    expect(existsSync(file)).toBe(false)
  })

  it('suggests checking the connection when helm cannot reach the cluster', async () => {
    const error = (await cli()
      .values('unreachable', 'kube-system', { all: false })
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as HelmError
    expect(error).toBeInstanceOf(HelmError)
    expect(error.helmExitCode).toBe(1)
    expect(error.message).toMatch(/^helm get values failed \(exit 1\): Kubernetes cluster unreachable/)
    expect(error.suggestions.join('\n')).toContain('--kubeconfig/--context')
  })

  it('says how to install helm when the binary is missing', async () => {
    const error = (await new HelmCli({ bin: join(dir, 'no-such-helm') }).version().then(
      () => undefined,
      (e: unknown) => e,
    )) as HelmError
    expect(error).toBeInstanceOf(HelmError)
    expect(error.helmExitCode).toBeUndefined()
    expect(error.message).toContain('not found')
    expect(error.suggestions[0]).toMatch(/install helm v3\.14\+ or v4 .*HELM_BIN/)
  })

  it('defaults the binary to $HELM_BIN', () => {
    const saved = process.env.HELM_BIN
    process.env.HELM_BIN = '/opt/helm/bin/helm'
    try {
      expect(new HelmCli().bin).toBe('/opt/helm/bin/helm')
    } finally {
      if (saved === undefined) delete process.env.HELM_BIN
      else process.env.HELM_BIN = saved
    }
  })

  it('describes an upgrade without running anything', async () => {
    await resetCalls()
    const text = cli().describeUpgrade({
      release: 'kata-deploy',
      namespace: 'kube-system',
      chart: 'oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy',
      version: '3.31.0',
      values: { a: 1 },
    })
    expect(text).toBe(
      `${helm} upgrade kata-deploy oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy -n kube-system --version 3.31.0 --reset-values -f <values-file> --kubeconfig /tmp/kc.yaml --kube-context ctx-a`,
    )
    expect(await calls()).toEqual([])
  })

  it("names kata-lcm's overrides of the values file (a job-mode wave's job.nodes)", () => {
    const text = cli().describeUpgrade({
      release: 'kata-deploy',
      namespace: 'kube-system',
      chart: 'kata-deploy',
      version: '4.0.0',
      values: { env: { debug: true }, job: { nodes: ['n1', 'n2'], parallelism: 2 } },
      overrides: { job: { nodes: ['n1', 'n2'], parallelism: 2 }, verification: { pod: '' } },
    })
    expect(text).toMatch(
      /--kube-context ctx-a {2}# <values-file>: the release's values with job\.nodes=\["n1","n2"\], job\.parallelism=2, verification\.pod=""$/,
    )
  })
})
