import { describe, expect, it } from 'vitest'
import { InputError, PreconditionError } from '../../../src/lifecycle/errors.js'
import { Annotation, STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { rollbackNode } from '../../../src/lifecycle/services/rollback.service.js'
import type { RollbackRequest } from '../../../src/lifecycle/settings/request.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import {
  scenario,
  statusWrites,
  VERIFICATION_POD,
  RELEASE,
  VERIFY_NAMESPACE,
  type Scenario,
  type ScenarioOptions,
} from '../../fakes/scenario.js'

const verification = { source: VERIFICATION_POD, origin: 'verify.yaml', namespace: VERIFY_NAMESPACE, timeoutMs: 60_000 }

/** A fleet upgraded to the target by a successful run. */
async function upgraded(options: ScenarioOptions = {}): Promise<Scenario> {
  const s = await scenario({ nodes: 2, ...options })
  expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('success')
  return s
}

async function rollback(s: Scenario, node: string, overrides: Partial<RollbackRequest> = {}) {
  return rollbackNode(s.deps, s.rollbackRequest(node, overrides), 'rb-1')
}

/** `rollback NODE` on a node an operator cordoned: it succeeds, and the cordon stays theirs. */
async function expectOperatorCordonKept(s: Scenario, node: string) {
  expect((await rollback(s, node)).outcome).toBe('success')
  const n = s.cluster.node(node)
  expect(n.unschedulable).toBe(true)
  expect(n.annotations[Annotation.wasUnschedulable]).toBe('true')
  expect(n.annotations).not.toHaveProperty(Annotation.cordonedByUs)
}

describe('rollback NODE', () => {
  it('goes back to the version recorded on the node, restarts its pod, uncordons it (kata-lcm cordoned it)', async () => {
    const s = await upgraded()
    const before = s.cluster.writes.length
    const report = await rollback(s, 'node-1')

    expect(report).toMatchObject({
      command: 'rollback',
      outcome: 'success',
      fromVersion: '3.29.0',
      targetVersion: '3.28.0',
      mode: 'daemonset',
    })
    expect(report.nodes).toEqual([{ name: 'node-1', status: 'rolled-back', version: '3.28.0' }])
    expect(s.helm.upgrades.at(-1)).toMatchObject({
      version: '3.28.0',
      values: { updateStrategy: { type: 'OnDelete' }, verification: { pod: '' } },
    })
    expect(s.cluster.versionOn('node-1')).toBe('3.28.0')
    expect(s.cluster.versionOn('node-2')).toBe('3.29.0')
    const n = s.cluster.node('node-1')
    expect(n.annotations).toMatchObject({
      [STATUS_ANNOTATION]: 'rolled-back',
      [Annotation.currentVersion]: '3.28.0',
      [Annotation.runId]: 'rb-1',
    })
    expect(n.annotations).not.toHaveProperty(Annotation.cordonedByUs)
    expect(n.unschedulable).toBe(false)
    const writes = statusWrites(s.cluster, 'node-1').filter((w) => w.seq > s.cluster.writes[before - 1]!.seq)
    expect(writes.map((w) => [w.status, w.unschedulable])).toEqual([
      ['rolling-back', true],
      ['rolled-back', false],
    ])
    expect(s.cluster.writesTo('node-2').filter((w) => w.seq > before)).toEqual([])
  })

  it('without a recorded version, takes the newest other chart version from helm history', async () => {
    const s = await scenario({ nodes: 1, chartVersions: ['3.27.0', '3.28.0', '3.29.0'] })
    await s.helm.upgrade({
      release: 'kata-deploy',
      namespace: 'kube-system',
      chart: 'oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy',
      version: '3.29.0',
      values: {},
    })
    const report = await rollback(s, 'node-1')
    expect(report.targetVersion).toBe('3.28.0')
    expect(s.cluster.versionOn('node-1')).toBe('3.28.0')
  })

  it('an explicit --to-version wins', async () => {
    const s = await upgraded({ chartVersions: ['3.27.0', '3.28.0', '3.29.0'] })
    expect((await rollback(s, 'node-1', { toVersion: '3.27.0' })).targetVersion).toBe('3.27.0')
    expect(s.cluster.versionOn('node-1')).toBe('3.27.0')
  })

  it('an operator-cordoned node: stays cordoned, and kata-lcm never claims the cordon', async () => {
    const s = await upgraded()
    s.cluster.setNode('node-1', { unschedulable: true })
    await expectOperatorCordonKept(s, 'node-1')
    expect(statusWrites(s.cluster, 'node-1').some((w) => w.unschedulable === false && w.status === 'rolled-back')).toBe(
      false,
    )
  })

  it('plans again under the lock: a cordon the operator set after the first look is theirs, kept', async () => {
    const s = await upgraded()
    const tryLock = s.cluster.tryLock.bind(s.cluster)
    s.cluster.tryLock = (...args) => {
      // Between the plan before the lock and the lock: the operator cordons the node.
      s.cluster.setNode('node-1', { unschedulable: true })
      return tryLock(...args)
    }
    await expectOperatorCordonKept(s, 'node-1')
  })

  it('a node kata-lcm left failed (cordoned by it) is uncordoned once the rollback works', async () => {
    const s = await scenario({ nodes: 1 })
    s.cluster.verification.set('node-1', 'fail')
    s.helm.failNextUpgrade({ when: (r) => r.version === '3.28.0', recordsRevision: false })
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-1')).outcome).toBe('manual-action')
    expect(s.cluster.node('node-1').unschedulable).toBe(true)
    const report = await rollback(s, 'node-1')
    expect(report.outcome).toBe('success')
    expect(s.cluster.node('node-1').unschedulable).toBe(false)
    expect(s.cluster.versionOn('node-1')).toBe('3.28.0')
  })

  it('runs the verification pod when one is given, before putting the node back', async () => {
    const s = await upgraded()
    const report = await rollback(s, 'node-1', { verification })
    expect(report.outcome).toBe('success')
    const created = s.cluster.writes.filter((w) => w.verb === 'create' && w.resource === 'pods' && w.node === 'node-1')
    const rolledBack = statusWrites(s.cluster, 'node-1').at(-1)!
    expect(created.at(-1)!.seq).toBeLessThan(rolledBack.seq)
    expect(rolledBack.status).toBe('rolled-back')
  })

  it('a failed verification leaves the node failed and cordoned', async () => {
    const s = await upgraded()
    s.cluster.verification.set('node-1', { behaviour: 'fail', logTail: ['no kvm'] })
    const report = await rollback(s, 'node-1', { verification })
    expect(report.outcome).toBe('manual-action')
    expect(report.nodes[0]).toMatchObject({ status: 'failed', evidence: { logTail: ['no kvm'] } })
    expect(s.status('node-1')).toBe('failed')
    expect(s.cluster.node('node-1').unschedulable).toBe(true)
    expect(report.nextSteps.join('\n')).toMatch(/kubectl uncordon node-1/)
  })

  it('a revert that fails (helm) leaves the node failed and cordoned', async () => {
    const s = await upgraded()
    s.helm.failNextUpgrade({ message: 'UPGRADE FAILED: boom' })
    const report = await rollback(s, 'node-1')
    expect(report.outcome).toBe('manual-action')
    expect(report.summary).toMatch(/rollback of node-1 failed: .*boom; the node stays cordoned/)
    expect(s.status('node-1')).toBe('failed')
    expect(s.cluster.node('node-1').annotations[Annotation.lastError]).toMatch(/boom/)
    expect(s.cluster.node('node-1').unschedulable).toBe(true)
    expect(s.cluster.versionOn('node-1')).toBe('3.29.0')
  })

  it("the operator's values: kept in the record while the fleet is mixed, back in the release once every node is rolled back", async () => {
    const s = await upgraded({ userValues: { env: { debug: 'true' } } })
    expect(s.cluster.runs.size).toBe(0)
    await rollback(s, 'node-1')
    // Mixed fleet: the release runs 3.28.0 with OnDelete; the operator's values wait in the record.
    expect(s.cluster.runs.get('kube-system/kata-deploy')?.userValues).toEqual({ env: { debug: 'true' } })
    const second = await rollbackNode(s.deps, s.rollbackRequest('node-2'), 'rb-2')
    expect(second.summary).toMatch(/every node runs 3.28.0 and the release has your own values back/)
    expect(s.helm.upgrades.at(-1)).toMatchObject({
      version: '3.28.0',
      noHooks: true,
      values: { env: { debug: 'true' } },
    })
    expect(s.cluster.runs.size).toBe(0)
  })

  it('rollback NODE, then upgrade again: the run takes the values from the record, and puts them back', async () => {
    const s = await upgraded({ userValues: { env: { debug: 'true' } } })
    await rollback(s, 'node-1')
    expect((await upgrade(s.deps, s.upgradeRequest(), 'run-2')).outcome).toBe('success')
    const last = s.helm.upgrades.at(-1)!
    expect(last).toMatchObject({ version: '3.29.0', noHooks: true })
    expect(last.values).toEqual({ env: { debug: 'true' } })
    expect(s.cluster.runs.size).toBe(0)
  })

  it('job mode: a scoped reinstall of the previous version on just that node', async () => {
    const s = await upgraded({ mode: 'job' })
    const report = await rollback(s, 'node-2')
    expect(report.outcome).toBe('success')
    expect(s.helm.upgrades.at(-1)).toMatchObject({
      version: '3.32.0',
      values: { deploymentMode: 'job', job: { nodes: ['node-2'], parallelism: 1 } },
    })
    expect(s.cluster.versionOn('node-2')).toBe('3.32.0')
    expect(s.cluster.versionOn('node-1')).toBe('3.33.0')
  })

  it.each<[string, Partial<RollbackRequest>, (s: Scenario) => void, RegExp]>([
    ['unknown node', {}, () => {}, /NODE: no node named "ghost"/],
    ['bad --to-version', { toVersion: 'three' }, () => {}, /--to-version: "three" is not a semantic version/],
    ['a chart without that version', { toVersion: '3.20.0' }, () => {}, /--chart: cannot read chart/],
    [
      'a release not deployed',
      {},
      (s) => s.helm.setStatus('kata-deploy', 'kube-system', 'pending-rollback'),
      /not deployed/,
    ],
  ])('refuses %s before any write', async (_what, overrides, arrange, message) => {
    const s = await scenario({ nodes: 1 })
    arrange(s)
    const node = _what === 'unknown node' ? 'ghost' : 'node-1'
    await expect(rollback(s, node, overrides)).rejects.toThrow(message)
    expect(s.cluster.writes).toEqual([])
  })

  it('refuses when no earlier version is known at all', async () => {
    const s = await scenario({ nodes: 1 })
    const error = await rollback(s, 'node-1').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PreconditionError)
    expect((error as PreconditionError).suggestions).toEqual(['pass --to-version X.Y.Z'])
    expect(s.cluster.writes).toEqual([])
  })

  it("checks this identity's rights as an upgrade does, the run's and the mode's, before any write", async () => {
    for (const denied of ['patch nodes', `delete pods ${RELEASE.namespace}`, `get pods/log ${VERIFY_NAMESPACE}`]) {
      const s = await upgraded()
      const before = s.cluster.writes.length
      s.cluster.denied.add(denied)
      const error = await rollback(s, 'node-1', { verification }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(PreconditionError)
      const [verb, resource, namespace] = denied.split(' ')
      expect((error as Error).message).toMatch(
        new RegExp(
          `^this identity may not ${verb} ${resource}${namespace ? ` in ${namespace}` : ' \\(cluster-wide\\)'}`,
        ),
      )
      expect(s.cluster.writes.slice(before)).toEqual([])
    }
  })

  it('a verification pod needs its namespace; without a pod, no pod rights are asked', async () => {
    const s = await upgraded()
    const before = s.cluster.writes.length
    s.cluster.namespaces = new Set([RELEASE.namespace])
    await expect(rollback(s, 'node-1', { verification })).rejects.toThrow(
      `--verification-namespace: namespace "${VERIFY_NAMESPACE}" does not exist`,
    )
    expect(s.cluster.writes.slice(before)).toEqual([])
    s.cluster.denied.add(`create pods ${VERIFY_NAMESPACE}`)
    expect((await rollback(s, 'node-1')).outcome).toBe('success')
  })

  it('refuses a verification pod that cannot run on the node', async () => {
    const s = await upgraded()
    const error = await rollback(s, 'node-1', {
      verification: { ...verification, source: VERIFICATION_POD.replace('    - operator: Exists\n', '') },
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).field).toBe('--verification-pod')
  })
})
