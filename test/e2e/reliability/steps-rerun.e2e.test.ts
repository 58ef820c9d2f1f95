/**
 * The Argo steps as Argo's retryStrategy runs them, on the real control plane: each wave step run
 * twice in a row, and each step killed (SIGKILL) mid-work then run again. Every healthy node must
 * still end `completed` on the target, uncordoned, upgraded once.
 */
import { describe, expect, it } from 'vitest'
import { waitForList, type KubeObject } from '../harness/wait.js'
import { chartPath, useWorlds, World, type CliResult } from '../lifecycle/world.js'

const open = useWorlds()
const HOLDER = 'argo/kata-lcm-steps-e2e'
const STEPS = ['prepare', 'upgrade', 'verify', 'rollback'] as const
const MODES = [
  { mode: 'daemonset' as const, from: '3.27.0', to: '3.28.0' },
  { mode: 'job' as const, from: '3.32.0', to: '3.33.0' },
]

function planArgs(w: World, to: string): string[] {
  return [
    'step',
    'plan',
    '--holder',
    HOLDER,
    '--target-version',
    to,
    '--chart',
    chartPath(to),
    '--previous-chart',
    chartPath(w.options.version),
    '--node-selector',
    `kata-lcm.test/world=${w.id}`,
    '--batch-size',
    '3',
    '--verification-pod',
    w.verificationFile,
    '--verification-namespace',
    w.namespace,
    '--verification-timeout',
    '60s',
    '--ready-timeout',
    '90s',
  ]
}

const step = (w: World, name: string, extra: string[] = []): Promise<CliResult> =>
  w.cli(['step', name, '--holder', HOLDER, ...extra])

async function expectConverged(
  w: World,
  to: string,
  revisionsBefore: number,
  since: Date,
  upgrades: number[] = [1],
): Promise<void> {
  for (const name of w.nodeNames)
    expect(await w.node(name), name).toMatchObject({ status: 'completed', version: to, unschedulable: false })
  // Upgraded once: one helm upgrade for the wave, one (hooks off) putting the operator's values back.
  expect(upgrades.map((n) => n + 1)).toContain((await w.release()).revision - revisionsBefore)
  if (w.options.mode !== 'job') expect(await w.kataDeployPodDeletesSince(since)).toBe(w.nodeNames.length)
  expect(await w.userValues()).toEqual(
    w.options.mode === 'job'
      ? { deploymentMode: 'job', nodeSelector: { 'kata-lcm.test/world': w.id } }
      : { nodeSelector: { 'kata-lcm.test/world': w.id } },
  )
}

describe('Argo steps retried (real control plane)', () => {
  for (const { mode, from, to } of MODES) {
    it(`${mode}: every wave step run twice in a row; a retried rollback of a healthy wave succeeds`, async () => {
      const w = await open({
        nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('s', `tw${mode[0]}`, i) })),
        version: from,
        mode,
      })
      const before = (await w.release()).revision
      const since = new Date()
      const plan = await w.cli(planArgs(w, to))
      expect(plan.code, plan.stderr).toBe(0)
      for (const name of STEPS) {
        for (const attempt of [1, 2]) {
          const r = await step(w, name, ['--wave', '1'])
          expect(r.code, `${name} #${attempt}: ${r.stderr}`).toBe(0)
        }
      }
      const finalize = await step(w, 'finalize')
      expect(finalize.code, finalize.stderr).toBe(0)
      await expectConverged(w, to, before, since)
    })
  }

  const killAt: [string, (w: World) => Promise<void>][] = [
    ['prepare', (w) => w.waitNodeStatus(w.nodeNames[0]!, 'cordoned')],
    ['upgrade', (w) => w.waitNodeStatus(w.nodeNames[0]!, 'upgrading')],
    [
      'verify',
      async (w) => {
        await waitForList<KubeObject>(
          w.kc,
          `/api/v1/namespaces/${w.namespace}/pods`,
          (pods) => pods.length > 0,
          60_000,
          { labelSelector: 'kata-lcm.katacontainers.io/verification-for' },
        )
      },
    ],
  ]
  // A SIGKILL of kata-lcm alone leaves its helm child running: the retried step waits for that helm
  // (docs/architecture.md, a helm command left pending). Losing the helm too is in real-chart-job.
  const cases = MODES.flatMap((m) => killAt.map(([name, when]) => ({ ...m, name, when })))
  for (const { mode, from, to, name, when } of cases) {
    it(`${mode}: step ${name} killed (SIGKILL) mid-work, then run again: the wave still converges${mode === 'job' && name === 'upgrade' ? ' (its helm ran on: waited for)' : ', upgraded once'}`, async () => {
      const w = await open({
        nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('s', `k${mode[0]}${name.slice(0, 3)}`, i) })),
        version: from,
        mode,
      })
      const before = (await w.release()).revision
      const since = new Date()
      expect((await w.cli(planArgs(w, to))).code).toBe(0)
      for (const s of STEPS) {
        if (s === name) {
          const { child, done } = w.spawnCli(['step', s, '--holder', HOLDER, '--wave', '1'])
          await when(w)
          child.kill('SIGKILL')
          expect((await done).code).toBe(137)
        }
        const r = await step(w, s, ['--wave', '1'])
        expect(r.code, `${s}: ${r.stderr}`).toBe(0)
      }
      expect((await step(w, 'finalize')).code).toBe(0)
      // Job mode killed mid-upgrade: the killed step's helm may have finished its upgrade (the retry,
      // which knows no "already installed" in job mode, upgrades once more) or not have started.
      await expectConverged(w, to, before, since, mode === 'job' && name === 'upgrade' ? [1, 2] : [1])
    })
  }
})
