import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { InputError } from '../../../src/lifecycle/errors.js'
import { matchesLabelSelector } from '../../../src/lifecycle/run/plan.js'
import { groupByPool, NO_RUN_POD, parsePoolsFile, poolsOf, type Pool } from '../../../src/lifecycle/run/pools.js'
import { rollbackNode } from '../../../src/lifecycle/services/rollback.service.js'
import { planStep, waveStep } from '../../../src/lifecycle/services/steps.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { RELEASE, scenario, VERIFICATION_POD } from '../../fakes/scenario.js'
import type { Scenario } from '../../fakes/scenario.js'

const GPU_POD = VERIFICATION_POD.replace('name: verify\n', 'name: verify-gpu\n')
const gpuPod = parse(GPU_POD) as Record<string, unknown>

const node = (name: string, labels: Record<string, string>) => ({ name, labels })

/** Two general nodes and two GPU nodes, interleaved by name. */
async function fleet(): Promise<Scenario> {
  return scenario({
    nodes: [
      node('node-1', { pool: 'general' }),
      node('node-2', { pool: 'gpu' }),
      node('node-3', { pool: 'general' }),
      node('node-4', { pool: 'gpu' }),
    ],
  })
}

const POOLS: Pool[] = poolsOf(
  [
    { name: 'gpu', nodeSelector: 'pool=gpu', batchSize: 1, verification: { pod: gpuPod, timeout: '5m' } },
    { name: 'rest' },
  ],
  'policy file p.yaml',
)

/** The verification container's name of every verification pod created, per node, in order. */
function verifiedWith(s: Scenario): [string, string][] {
  return s.cluster.writes
    .filter((w) => w.verb === 'create' && w.resource === 'pods' && w.namespace === 'kata-verify')
    .map((w) => {
      const spec = (w.detail as { spec: { containers: { name: string }[] } }).spec
      return [w.node!, spec.containers[0]!.name]
    })
}

describe('node pools', () => {
  it('label selectors match as the API server evaluates them', () => {
    const labels = { pool: 'gpu', zone: 'a' }
    expect(matchesLabelSelector(labels, 'pool=gpu')).toBe(true)
    expect(matchesLabelSelector(labels, 'pool==gpu,zone in (a,b)')).toBe(true)
    expect(matchesLabelSelector(labels, 'pool!=gpu')).toBe(false)
    expect(matchesLabelSelector(labels, 'tier!=x')).toBe(true)
    expect(matchesLabelSelector(labels, 'zone notin (b)')).toBe(true)
    expect(matchesLabelSelector(labels, '!zone')).toBe(false)
    expect(matchesLabelSelector(labels, 'zone,!tier')).toBe(true)
  })

  it('a node goes to the first pool that selects it; a pool without a selector takes the rest', () => {
    const nodes = ['a', 'b', 'c'].map((name, i) => ({
      name,
      uid: name,
      labels: { pool: i === 1 ? 'gpu' : 'general' },
      annotations: {},
      taints: [],
      unschedulable: false,
    }))
    const { groups, unpooled } = groupByPool(nodes, POOLS)
    expect(groups.map((g) => [g.pool.name, g.nodes.map((n) => n.name)])).toEqual([
      ['gpu', ['b']],
      ['rest', ['a', 'c']],
    ])
    expect(unpooled).toEqual([])
    expect(groupByPool(nodes, POOLS.slice(0, 1)).unpooled.map((n) => n.name)).toEqual(['a', 'c'])
  })

  it('a bad pool is refused naming the source and the field', () => {
    expect(() => parsePoolsFile('- name: gpu\n  nodeSelector: "pool in gpu"\n', '--pools p.yaml')).toThrow(
      /^--pools p.yaml: pools\[0\].nodeSelector: "pool in gpu" is not a valid label requirement/,
    )
    expect(() => parsePoolsFile('- name: a\n- name: a\n', '--pools p.yaml')).toThrow(
      /^--pools p.yaml: pools\[1\].name: "a" names two pools/,
    )
    expect(() => parsePoolsFile('- name: a\n  batchSize: 0\n', '--pools p.yaml')).toThrow(
      /^--pools p.yaml: pools\[0\].batchSize: must be at least 1, not 0/,
    )
    expect(() => parsePoolsFile('[]', '--pools p.yaml')).toThrow(/^--pools p.yaml: pools: must hold at least 1 item/)
    // A file of comments only holds no pools (the Argo template's file when the workflow has none).
    expect(parsePoolsFile("# the workflow's pools parameter\n", '--pools p.yaml')).toBeUndefined()
    // An empty one is a mistake (a truncated or wrong file), not a way to say "no pools".
    for (const empty of ['', '\n', '  \n\t\n'])
      expect(() => parsePoolsFile(empty, '--pools p.yaml')).toThrow(
        /^--pools p.yaml: the file is empty; give a YAML list of pools \(name, nodeSelector or nodeTaint, .*\), or leave out --pools$/,
      )
    expect(() => parsePoolsFile('- name: a\n  size: 2\n', '--pools p.yaml')).toThrow(
      /^--pools p.yaml: pools\[0\].size: unknown field; known: name, nodeSelector/,
    )
    expect(() =>
      poolsOf([{ name: 'a', verification: { pod: { apiVersion: 'v1', kind: 'Pod', spec: {} } } }], 'policy x'),
    ).toThrow(/^--verification-pod: policy x: pools\[0\].verification.pod never uses \$\{NODE\}/)
  })

  it("an alias bomb (anchors that expand past yaml's alias limit) is bad input naming the file, not a crash", () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      ...['b', 'c', 'd', 'e', 'f'].map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]`),
    ].join('\n')
    const refused = (() => {
      try {
        parsePoolsFile(
          `- name: x\n  nodeSelector: pool=x\n  bomb: {${bomb.replaceAll('\n', ', ')}}\n`,
          '--pools p.yaml',
        )
      } catch (error) {
        return error
      }
    })()
    expect(refused).toBeInstanceOf(InputError)
    expect((refused as InputError).exitCode).toBe(2)
    expect((refused as InputError).message).toMatch(/^--pools p.yaml: its aliases expand too far \(.*\); /)
    expect((refused as InputError).message).not.toContain('\n')
  })

  it('pools run in order, each pool verified with its own pod, each pool with its own batch', async () => {
    const s = await fleet()
    const report = await upgrade(s.deps, s.upgradeRequest({ pools: POOLS, batchSize: 2 }), 'run-1')
    expect(report.outcome).toBe('success')
    expect(report.waves).toEqual([['node-2'], ['node-4'], ['node-1', 'node-3']])
    expect(report.wavePools).toEqual(['gpu', 'gpu', 'rest'])
    expect(report.rollout?.pools).toEqual([
      { name: 'gpu', nodes: ['node-2', 'node-4'], batchSize: 1 },
      { name: 'rest', nodes: ['node-1', 'node-3'], batchSize: 2 },
    ])
    expect(verifiedWith(s)).toEqual([
      ['node-2', 'verify-gpu'],
      ['node-4', 'verify-gpu'],
      ['node-1', 'verify'],
      ['node-3', 'verify'],
    ])
  })

  it('a failure in the first pool stops the run before the next pool', async () => {
    const s = await fleet()
    s.cluster.verification.set('node-4', 'fail')
    const report = await upgrade(s.deps, s.upgradeRequest({ pools: POOLS, batchSize: 2 }), 'run-1')
    expect(report.outcome).toBe('rolled-back')
    expect(report.nodes.find((n) => n.name === 'node-4')?.status).toBe('rolled-back')
    for (const name of ['node-1', 'node-3']) expect(s.cluster.writesTo(name)).toEqual([])
  })

  it("a canary per pool: each pool's first wave, then the pool's batch", async () => {
    const s = await scenario({
      nodes: [1, 2, 3, 4, 5, 6].map((i) => node(`node-${i}`, { pool: i <= 3 ? 'a' : 'b' })),
    })
    const pools = poolsOf([{ name: 'a', nodeSelector: 'pool=a' }, { name: 'b' }], 'p')
    const report = await upgrade(s.deps, s.upgradeRequest({ pools, canary: 1, batchSize: 2, dryRun: true }), 'r')
    expect(report.waves).toEqual([['node-1'], ['node-2', 'node-3'], ['node-4'], ['node-5', 'node-6']])
    expect(s.cluster.writes).toEqual([])
  })

  it('a selected node in no pool is refused before any write', async () => {
    const s = await fleet()
    const pools = poolsOf([{ name: 'gpu', nodeSelector: 'pool=gpu' }], 'p')
    await expect(upgrade(s.deps, s.upgradeRequest({ pools }), 'run-1')).rejects.toThrow(
      /^node-1, node-3: selected but in no pool \(gpu\); add a pool without a nodeSelector last/,
    )
    expect(s.cluster.writes).toEqual([])
  })

  it('with every pool verifying for itself the run needs no pod of its own; without, it does', async () => {
    const s = await fleet()
    const own = poolsOf(
      [
        { name: 'gpu', nodeSelector: 'pool=gpu', verification: { pod: gpuPod } },
        { name: 'rest', verification: { pod: gpuPod } },
      ],
      'p',
    )
    const request = s.upgradeRequest({ pools: own, batchSize: 2 })
    const report = await upgrade(s.deps, { ...request, verification: { ...request.verification, ...NO_RUN_POD } }, 'r')
    expect(report.outcome).toBe('success')
    await expect(
      upgrade(s.deps, { ...request, pools: POOLS, verification: { ...request.verification, ...NO_RUN_POD } }, 'r2'),
    ).rejects.toThrow(/^--verification-pod: is required: pool\(s\) rest have no verification.pod of their own/)
  })

  it('the Argo steps verify each wave with its pool pod (the run record keeps it)', async () => {
    const s = await fleet()
    const planned = await planStep(s.deps, s.upgradeRequest({ pools: POOLS, batchSize: 2 }), 'run-1', 'argo/wf')
    expect(planned.waves).toBe(3)
    const record = await s.cluster.readRun(RELEASE.namespace, RELEASE.name)
    expect(record?.wavePools).toEqual(['gpu', 'gpu', 'rest'])
    for (const wave of [1, 3])
      for (const step of ['prepare', 'upgrade', 'verify', 'rollback'] as const)
        await waveStep(s.deps, RELEASE, wave, step, 'argo/wf')
    expect(verifiedWith(s)).toEqual([
      ['node-2', 'verify-gpu'],
      ['node-1', 'verify'],
      ['node-3', 'verify'],
    ])
  })

  it('--max-unavailable caps every wave at the room that nodes already cordoned leave', async () => {
    const s = await scenario({
      nodes: [...['node-1', 'node-2', 'node-3', 'node-4', 'node-5'].map((n) => ({ name: n }))],
    })
    s.cluster.setNode('node-5', { unschedulable: true })
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 3, maxUnavailable: 3, dryRun: true }), 'r')
    expect(report.waves).toEqual([['node-1', 'node-2'], ['node-3', 'node-4'], ['node-5']])
    expect(report.rollout?.maxUnavailable).toBe(3)
    await expect(upgrade(s.deps, s.upgradeRequest({ maxUnavailable: 1 }), 'r')).rejects.toThrow(
      /^--max-unavailable 1: 1 node\(s\) matching the selection are already unschedulable \(node-5\), so no wave may cordon another/,
    )
    expect(s.cluster.writes).toEqual([])
  })

  it("rollback NODE verifies a pool's node with the pool's own pod, another node with the run-wide one", async () => {
    const s = await fleet()
    await upgrade(s.deps, s.upgradeRequest({ pools: POOLS, batchSize: 2 }), 'run-1')
    const before = verifiedWith(s).length
    const verification = { ...s.upgradeRequest().verification }
    const pools = { pools: POOLS, namespace: verification.namespace, timeoutMs: 60_000 }
    for (const node of ['node-2', 'node-1']) {
      const report = await rollbackNode(s.deps, s.rollbackRequest(node, { verification, pools }), `rb-${node}`)
      expect(report.outcome, report.summary).toBe('success')
      expect(s.status(node)).toBe('rolled-back')
    }
    expect(verifiedWith(s).slice(before)).toEqual([
      ['node-2', 'verify-gpu'],
      ['node-1', 'verify'],
    ])
  })
})
