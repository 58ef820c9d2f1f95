/**
 * Bad input met at the command line: refused with one line naming the flag and a documented exit
 * code (README's table), before anything is asked of a cluster.
 */
import type { Command } from '@oclif/core'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import InstallWorkflow from '../../../src/commands/install-workflow.js'
import PolicySchema from '../../../src/commands/policy/schema.js'
import PolicySet from '../../../src/commands/policy/set.js'
import PolicyShow from '../../../src/commands/policy/show.js'
import Rollback from '../../../src/commands/rollback.js'
import Status from '../../../src/commands/status.js'
import Upgrade from '../../../src/commands/upgrade.js'
import StepPrepare from '../../../src/commands/step/prepare.js'
import StepWave from '../../../src/commands/step/wave.js'
import { podWaves } from '../../../src/step-command.js'
import { VERIFICATION_POD } from '../../fakes/scenario.js'
import { apiServer, ROOT, runCli, type ApiServer } from './cli.js'

let api: ApiServer
let verifyPod: string
beforeAll(async () => {
  api = await apiServer()
  verifyPod = path.join(await mkdtemp(path.join(tmpdir(), 'kata-lcm-input-')), 'verify.yaml')
  await writeFile(verifyPod, VERIFICATION_POD)
})
afterAll(async () => api.close())

/** The one line of a refusal (after "Error: "), and that nothing was asked of the cluster. */
function refusal(r: { code: number; stderr: string }, since: number): string {
  expect(api.requests.slice(since)).toEqual([])
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines[0]).toMatch(/^Error: /)
  return lines[0]!.slice('Error: '.length)
}

describe('policy schema', () => {
  it('prints the schema and takes no flag it does not know (exit 2, naming it)', async () => {
    const ok = await runCli(PolicySchema, [])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.stdout)).toHaveProperty('properties')
    const bogus = await runCli(PolicySchema, ['--bogus'])
    expect(bogus).toMatchObject({ code: 2, stdout: '' })
    expect(bogus.stderr).toMatch(/Nonexistent flag: --bogus/)
  })
})

describe('--policy-namespace', () => {
  const bad = ['--policy-namespace', 'Bad_NS']
  it.each<[string, Command.Class, string[]]>([
    ['upgrade', Upgrade, ['--target-version', '3.28.0', ...bad]],
    ['rollback', Rollback, ['worker-1', ...bad]],
    ['status', Status, bad],
    ['install-workflow', InstallWorkflow, ['--dry-run', ...bad]],
    ['policy show', PolicyShow, bad],
    ['policy set', PolicySet, [`${ROOT}/package.json`, ...bad]],
  ])(
    '%s: a namespace that is no DNS-1123 label is refused (exit 2, naming the flag), before the cluster',
    async (_, command, argv) => {
      const since = api.requests.length
      const r = await runCli(command, [...argv, '--kubeconfig', api.kubeconfig])
      expect(r.code).toBe(2)
      expect(refusal(r, since)).toMatch(
        /^--policy-namespace: "Bad_NS" is not a namespace name; use at most 63 lower-case letters/,
      )
    },
  )
})

describe('drain options without drain', () => {
  /** A policy ConfigMap that turns drain on, served by the API server. */
  const drainPolicy = (method: string, url: string) =>
    method === 'GET' && url.startsWith('/api/v1/namespaces/kube-system/configmaps/kata-lcm-policy')
      ? {
          status: 200,
          body: {
            kind: 'ConfigMap',
            apiVersion: 'v1',
            metadata: { name: 'kata-lcm-policy', namespace: 'kube-system' },
            data: {
              'policy.yaml': 'apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\ndrain: {enabled: true}\n',
            },
          },
        }
      : undefined

  it.each([['--drain-force'], ['--drain-delete-emptydir-data']])(
    "%s without --drain (and no policy that drains) is refused, exit 2, naming it; with the policy's drain it is taken",
    async (flag) => {
      const argv = ['--target-version', '3.28.0', '--verification-pod', verifyPod, flag]
      const since = api.requests.length
      const r = await runCli(Upgrade, [...argv, '--kubeconfig', api.kubeconfig])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(
        new RegExp(`^Error: ${flag}: evicts nothing without --drain \\(nor does the policy's drain.enabled`),
      )
      // Only the policy was read: drain may come from it.
      expect(api.requests.slice(since).every((l) => l.includes('/configmaps/kata-lcm-policy'))).toBe(true)

      const drains = await apiServer(drainPolicy)
      try {
        const taken = await runCli(Upgrade, [...argv, '--kubeconfig', drains.kubeconfig])
        expect(taken.stderr).not.toMatch(new RegExp(`${flag}:`))
        expect(drains.requests.length).toBeGreaterThan(1)
      } finally {
        await drains.close()
      }
    },
  )
})

describe('upgrade: the order of its checks (README: flags first, then the cluster, then the policy)', () => {
  // verifyPod is written in beforeAll: the argv is built when the test runs.
  const up =
    (...argv: string[]) =>
    () => ['--target-version', '3.28.0', '--verification-pod', verifyPod, ...argv]
  it.each([
    [() => ['--target-version', 'banana'], /^--target-version: "banana" is not a semantic version/],
    [up('--batch-size', '0'), /^--batch-size: /],
    [up('--verification-timeout', 'soon'), /^--verification-timeout: "soon" is not a duration/],
    [up('--deployment-mode', 'sideways'), /^--deployment-mode: "sideways" is not a mode/],
    [up('--helm-release', 'Bad_Name!'), /^--helm-release: "Bad_Name!" is not a helm release name/],
    [up('--node-selector', 'pool in gpu'), /^--node-selector: /],
    [up('--pools', `${ROOT}/package.json`), /^--pools .*package.json: pools: must be/],
    [() => ['--target-version', '3.28.0', '--verification-pod', `${ROOT}/package.json`], /^--verification-pod: /],
  ])('%# is refused (exit 2, naming the flag) before the cluster is asked anything', async (argv, message) => {
    for (const kubeconfig of [api.kubeconfig, '/nonexistent/kubeconfig']) {
      const since = api.requests.length
      const r = await runCli(Upgrade, [...argv(), '--kubeconfig', kubeconfig])
      expect(r.code).toBe(2)
      expect(refusal(r, since)).toMatch(message)
    }
  })

  it('no kubeconfig: its error (exit 2, README: a bad flag, nothing written), not "no verification pod"', async () => {
    const r = await runCli(Upgrade, ['--target-version', '3.28.0', '--kubeconfig', '/nonexistent/kubeconfig'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: --kubeconfig: cannot load \/nonexistent\/kubeconfig/)
  })

  it('an API server that cannot be reached: the cluster error (exit 7), not "no verification pod"', async () => {
    const gone = await apiServer()
    await gone.stop()
    try {
      const r = await runCli(Upgrade, ['--target-version', '3.28.0', '--kubeconfig', gone.kubeconfig])
      expect(r.code).toBe(7)
      expect(r.stderr).toMatch(/ECONNREFUSED|reachable/)
      expect(r.stderr).not.toMatch(/no verification pod/)
    } finally {
      await gone.close()
    }
  })
})

describe('status: its flags before the cluster', () => {
  it.each([
    [['--helm-release', 'kata_deploy'], /^--helm-release: "kata_deploy" is not a helm release name/],
    [['--helm-namespace', 'Bad_NS'], /^--helm-namespace: "Bad_NS" is not a namespace name/],
    [['--node-taint-value', 'x'], /^--node-taint-value: /],
  ])('%j is refused (exit 2, naming the flag) before the cluster is asked anything', async (argv, message) => {
    const since = api.requests.length
    const r = await runCli(Status, [...argv, '--kubeconfig', api.kubeconfig])
    expect(r.code).toBe(2)
    expect(refusal(r, since)).toMatch(message)
  })
})

describe('--metrics-file', () => {
  it.each([
    [
      'run.txt',
      /^--metrics-file: run\.txt must end in \.prom \(node_exporter's textfile collector reads only \*\.prom\)$/,
    ],
    ['/no/such/dir/run.prom', /^--metrics-file: its directory \/no\/such\/dir cannot be written: ENOENT$/],
  ])('%s is refused (exit 2, naming the flag), before the cluster and before any file', async (file, line) => {
    const since = api.requests.length
    const r = await runCli(Upgrade, [
      '--target-version',
      '3.28.0',
      '--verification-pod',
      verifyPod,
      '--metrics-file',
      file,
      '--kubeconfig',
      api.kubeconfig,
    ])
    expect(r.code).toBe(2)
    expect(refusal(r, since)).toMatch(line)
  })
})

describe('step wave --pod, --waves-per-pod', () => {
  it('pod P of K waves runs waves (P-1)K+1 through PK', () => {
    expect([1, 2, 3].map((p) => podWaves(p, 5))).toEqual([
      { first: 1, through: 5 },
      { first: 6, through: 10 },
      { first: 11, through: 15 },
    ])
  })

  it.each<[string, Command.Class, string[], RegExp]>([
    [
      'a phase step given --pod',
      StepPrepare,
      ['--pod', '1', '--waves-per-pod', '2'],
      /^Error: --pod: only step wave takes it/,
    ],
    [
      'both --wave and --pod',
      StepWave,
      ['--wave', '1', '--pod', '1', '--waves-per-pod', '2'],
      /--(pod|wave) cannot also be provided when using --(wave|pod)/,
    ],
    [
      '--pod without --waves-per-pod',
      StepWave,
      ['--pod', '1'],
      /All of the following must be provided when using --pod: --waves-per-pod/,
    ],
    [
      'neither --wave nor --pod',
      StepWave,
      [],
      /Exactly one of the following must be provided: --pod, --wave|Exactly one of the following must be provided: --wave, --pod/,
    ],
    [
      '--waves-per-pod 0',
      StepWave,
      ['--pod', '1', '--waves-per-pod', '0'],
      /Expected an integer greater than or equal to 1/,
    ],
  ])('%s: refused (exit 2), before the cluster', async (_, command, argv, why) => {
    const since = api.requests.length
    const r = await runCli(command, ['--holder', 'argo/wf', ...argv], { KUBECONFIG: api.kubeconfig })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(why)
    expect(api.requests.slice(since)).toEqual([])
  })
})
