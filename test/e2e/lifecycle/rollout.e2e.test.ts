/**
 * The rollout rules on the test cluster: a canary wave, a percentage batch, a soak between waves (and
 * a node going NotReady during it), pause and resume between waves, a node kept out by the skip label,
 * two pools in order with their own verification pods, the --max-unavailable cap.
 */
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml, stringify } from 'yaml'
import { makeNotReady } from '../harness/nodes.js'
import { useWorlds, World } from './world.js'

const open = useWorlds()

interface Report {
  waves: string[][]
  wavePools?: string[]
  outcome: string
  nodes: {
    name: string
    status: string
    version?: string
    reason?: string
    error?: string
    evidence?: { containers: string[] }
  }[]
}

/** A pool's own verification pod: the kwok stage's outcome label, and a container named after the pool. */
const poolPod = (outcome: string, container: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: '${TEST_POD}', labels: { 'kata-lcm.test/verify': outcome } },
  spec: {
    restartPolicy: 'Never',
    nodeSelector: { 'kubernetes.io/hostname': '${NODE}' },
    tolerations: [{ operator: 'Exists' }],
    containers: [{ name: container, image: 'quay.io/kata-containers/alpine-bash-curl:latest', command: ['true'] }],
  },
})

const nodes = (id: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ name: World.nodeName('ro', id, i + 1) }))

/** The time of the first progress line (stderr, `CI=true`: `<ISO time> <text>`) that matches. */
function lineTime(stderr: string, pattern: RegExp): number {
  const line = stderr.split('\n').find((l) => pattern.test(l))
  expect(line, `no progress line matches ${pattern}:\n${stderr}`).toBeDefined()
  return Date.parse(line!.split(' ')[0]!)
}

describe('rollout rules (real control plane)', () => {
  it('a canary wave of 1, then waves of the batch size', async () => {
    const w = await open({ nodes: nodes('cn', 5), version: '3.27.0' })
    const r = await w.upgrade('3.28.0', ['--canary', '1', '--batch-size', '2', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const names = w.nodeNames
    expect((JSON.parse(r.stdout) as Report).waves).toEqual([[names[0]], names.slice(1, 3), names.slice(3)])
    for (const name of names) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0' })
  })

  it('a percentage batch: 50% of 4 selected nodes is waves of 2', async () => {
    const w = await open({ nodes: nodes('pc', 4), version: '3.27.0' })
    const r = await w.upgrade('3.28.0', ['--batch-size', '50%', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as Report).waves).toEqual([w.nodeNames.slice(0, 2), w.nodeNames.slice(2)])
  })

  it('a soak: wave 2 starts only after wave 1 soaked in service (the wave timestamps); the dry run shows it', async () => {
    const w = await open({ nodes: nodes('sk', 2), version: '3.27.0' })
    const dry = await w.upgrade('3.28.0', ['--soak', '5s', '--dry-run'])
    expect(dry.stdout).toMatch(
      /wave 1: ro-sk-1\n {2}soak 5s in service, then re-check wave 1's nodes\n {2}wave 2: ro-sk-2/,
    )
    const r = await w.upgrade('3.28.0', ['--soak', '5s'])
    expect(r.code, r.stderr).toBe(0)
    const soakStart = lineTime(r.stderr, /wave 1: soaking 1 node\(s\) in service for 5s before wave 2/)
    const wave2 = lineTime(r.stderr, /wave 2 prepare: ro-sk-2/)
    expect(wave2 - soakStart).toBeGreaterThanOrEqual(5_000)
    expect((await w.node(w.nodeNames[0]!)).annotations['kata-lcm.katacontainers.io/soaked-in-run']).toBeDefined()
  })

  it('a node made NotReady during its soak stops the run at once (watched, not at the soak end): cordoned again and rolled back, the next wave untouched', async () => {
    const w = await open({ nodes: nodes('nr', 2), version: '3.27.0' })
    const [first, second] = w.nodeNames as [string, string]
    // A 10-minute soak, longer than the test's limit: only a watch ends it in time.
    const { done } = w.spawnCli(w.upgradeArgs('3.28.0', ['--soak', '10m']))
    await w.waitNodeStatus(first, 'completed')
    await makeNotReady(w.kc, first)
    const r = await done
    expect(r.code, r.stderr).toBe(3)
    const node = await w.node(first)
    expect(node).toMatchObject({ status: 'rolled-back', version: '3.27.0' })
    expect(node.annotations['kata-lcm.katacontainers.io/last-error']).toBe(
      'degraded during the soak: the node is NotReady',
    )
    expect((await w.node(second)).status).toBeUndefined()
  })

  it("a node whose kata-deploy pod is replaced during its soak is rolled back at once (the pods' watch), the next wave untouched", async () => {
    const w = await open({ nodes: nodes('pr', 2), version: '3.27.0' })
    const [first, second] = w.nodeNames as [string, string]
    const { done } = w.spawnCli(w.upgradeArgs('3.28.0', ['--soak', '10m']))
    await w.waitNodeStatus(first, 'completed')
    // As a crash-looping or evicted kata-deploy would: the DaemonSet controller makes a new pod.
    const pods = await w.core.listNamespacedPod({
      namespace: w.namespace,
      labelSelector: 'name=kata-deploy',
      fieldSelector: `spec.nodeName=${first}`,
    })
    for (const p of pods.items) await w.core.deleteNamespacedPod({ namespace: w.namespace, name: p.metadata!.name! })
    const r = await done
    expect(r.code, r.stderr).toBe(3)
    const node = await w.node(first)
    expect(node.status).toBe('rolled-back')
    expect(node.annotations['kata-lcm.katacontainers.io/last-error']).toMatch(/^degraded during the soak: /)
    expect((await w.node(second)).status).toBeUndefined()
  })

  it('pause between waves holds the next one (status shows it) until resume', async () => {
    const w = await open({ nodes: nodes('pz', 2), version: '3.27.0' })
    const [first, second] = w.nodeNames as [string, string]
    const { done } = w.spawnCli(w.upgradeArgs('3.28.0', ['--soak', '3s']))
    await w.waitNodeStatus(first, 'completed')
    const pause = await w.cli(['pause'])
    expect(pause.code, pause.stderr).toBe(0)
    // Well past the soak: wave 2 has not started, and status says why.
    const status = await w.cli(['status', '--node-selector', `kata-lcm.test/world=${w.id}`])
    expect(status.stdout).toMatch(/in flight: PAUSED by .* \(kata-lcm resume lets its next wave start\)/)
    await new Promise((resolve) => setTimeout(resolve, 6_000))
    expect((await w.node(second)).status).toBeUndefined()
    // Held still by the pause: -o yaml is the very object -o json prints, the run's pause in it.
    const selection = ['--node-selector', `kata-lcm.test/world=${w.id}`]
    const yaml = await w.cli(['status', '-o', 'yaml', ...selection])
    const json = await w.cli(['status', '-o', 'json', ...selection])
    expect(yaml.code, yaml.stderr).toBe(0)
    expect(parseYaml(yaml.stdout)).toEqual(JSON.parse(json.stdout))
    expect(JSON.parse(json.stdout)).toMatchObject({
      apiVersion: 'kata-lcm.katacontainers.io/v1alpha1',
      kind: 'Status',
      run: { paused: { by: expect.any(String), at: expect.any(String) } },
      counts: { completed: 1, untouched: 1, failed: 0 },
      rows: [
        { node: first, status: 'completed' },
        { node: second, status: '-' },
      ],
    })
    const resume = await w.cli(['resume'])
    expect(resume.code, resume.stderr).toBe(0)
    const r = await done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/paused by .*: wave 2 waits for kata-lcm resume/)
    expect(await w.node(second)).toMatchObject({ status: 'completed', version: '3.28.0' })
  })

  it('a node carrying kata-lcm.katacontainers.io/skip=true is never selected and is reported as skipped', async () => {
    const w = await open({ nodes: nodes('sl', 3), version: '3.27.0' })
    const kept = w.nodeNames[1]!
    await w.kc
      .makeApiClient(CoreV1Api)
      .patchNode(
        { name: kept, body: { metadata: { labels: { 'kata-lcm.katacontainers.io/skip': 'true' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    const since = new Date()
    const r = await w.upgrade('3.28.0', ['--batch-size', '3', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as Report
    expect(report.waves).toEqual([[w.nodeNames[0], w.nodeNames[2]]])
    expect(report.nodes.find((n) => n.name === kept)).toEqual({
      name: kept,
      status: 'skipped',
      reason: 'kata-lcm.katacontainers.io/skip=true',
    })
    expect((await w.writesSince(since)).filter((x) => x.includes(`nodes/${kept} `))).toEqual([])
    expect((await w.node(kept)).status).toBeUndefined()
  })

  it('two pools in order, each verified with its own pod: the GPU pool completes first, the failing pod of the next pool stops the run there', async () => {
    const gpu = { 'kata-lcm.test/pool': 'gpu' }
    const w = await open({
      nodes: [
        { name: World.nodeName('ro', 'pl', 1) },
        { name: World.nodeName('ro', 'pl', 2), labels: gpu },
        { name: World.nodeName('ro', 'pl', 3) },
        { name: World.nodeName('ro', 'pl', 4), labels: gpu },
      ],
      version: '3.27.0',
    })
    const [n1, g2, n3, g4] = w.nodeNames as [string, string, string, string]
    const pools = path.join(w.dir, 'pools.yaml')
    await writeFile(
      pools,
      stringify([
        {
          name: 'gpu',
          nodeSelector: 'kata-lcm.test/pool=gpu',
          batchSize: 2,
          verification: { pod: poolPod('succeed', 'verify-gpu') },
        },
        { name: 'general', canary: 1, verification: { pod: poolPod('fail', 'verify-general') } },
      ]),
    )
    const dry = await w.upgrade('3.28.0', ['--pools', pools, '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(
      'plan: 3 wave(s) in 2 pool(s), in order: gpu (2 node(s), waves of 2), general (2 node(s), waves of 1)',
    )
    expect(dry.stdout).toContain(
      `wave 1 (pool gpu): ${g2}, ${g4}\n  wave 2 (pool general, canary): ${n1}\n  wave 3 (pool general): ${n3}`,
    )

    const r = await w.upgrade('3.28.0', ['--pools', pools, '--json'])
    expect(r.code, r.stderr).toBe(3)
    const report = JSON.parse(r.stdout) as Report
    expect(report.waves).toEqual([[g2, g4], [n1], [n3]])
    expect(report.wavePools).toEqual(['gpu', 'general', 'general'])
    for (const name of [g2, g4]) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0' })
    // The general pool's own pod ran on n1 (its container is in the evidence) and failed it.
    const failed = report.nodes.find((n) => n.name === n1)!
    expect(failed.status).toBe('rolled-back')
    expect(failed.evidence?.containers.join(' ')).toMatch(/^verify-general: terminated/)
    expect((await w.node(n3)).status).toBeUndefined()
    // The GPU pool finished before the general pool's first wave started.
    expect(lineTime(r.stderr, /wave 2\/3 \(pool general\)/)).toBeGreaterThanOrEqual(
      lineTime(r.stderr, new RegExp(`${g4}: completed`)),
    )
  })

  it('--max-unavailable counts a node the operator cordoned: waves shrink to the room left, and that node stays cordoned', async () => {
    const w = await open({
      nodes: [...nodes('mu', 3), { name: World.nodeName('ro', 'mu', 4), unschedulable: true }],
      version: '3.27.0',
    })
    const cordoned = w.nodeNames[3]!
    const since = new Date()
    const dry = await w.upgrade('3.28.0', ['--batch-size', '3', '--max-unavailable', '2', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain('at most 2 selected node(s) unschedulable at once (--max-unavailable)')
    expect(await w.writesSince(since)).toEqual([])
    // No room at all: refused, nothing written.
    const none = await w.upgrade('3.28.0', ['--max-unavailable', '1'])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/--max-unavailable 1: 1 node\(s\) matching the selection are already unschedulable/)
    expect(await w.writesSince(since)).toEqual([])
    const r = await w.upgrade('3.28.0', ['--batch-size', '3', '--max-unavailable', '2', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect((JSON.parse(r.stdout) as Report).waves.map((wave) => wave.length)).toEqual([1, 1, 1, 1])
    expect(await w.node(cordoned)).toMatchObject({ status: 'completed', unschedulable: true })
  })
})

/**
 * `status --watch` on the world's nodes, started and watching (its first line printed) before it
 * returns. Its result is wrapped: an async function's returned promise would be awaited with it.
 */
async function startWatch(w: World): Promise<{ ended: Promise<{ code: number; lines: string[]; stderr: string }> }> {
  const { child, done } = w.spawnCli(['status', '--watch', '--node-selector', `kata-lcm.test/world=${w.id}`])
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer | string) => {
      out += String(d)
      if (/no run in flight/.test(out)) resolve()
    })
    child.on('close', () => reject(new Error(`status --watch ended before its first line: ${out}`)))
  })
  // A watch whose test failed must not outlive it (its world's nodes gone, it would wait 24h).
  const stop = setTimeout(() => child.kill(), 200_000)
  const ended = done.then((r) => {
    clearTimeout(stop)
    return { code: r.code, lines: r.stdout.trimEnd().split('\n'), stderr: r.stderr }
  })
  return { ended }
}

describe('status --watch (real control plane)', () => {
  it('started before a 3-wave run: a timestamped line per change, every wave seen, exit 0 when the run completes', async () => {
    const w = await open({ nodes: nodes('sw', 3), version: '3.27.0' })
    const watch = await startWatch(w)
    const run = await w.upgrade('3.28.0', ['--batch-size', '1'])
    expect(run.code, run.stderr).toBe(0)
    const { code, lines, stderr } = await watch.ended
    expect(code, `${lines.join('\n')}\n${stderr}`).toBe(0)
    // CI mode: every line `<ISO time> <text>`, never the same text twice in a row.
    const texts = lines.map((l) => {
      expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /)
      return l.slice(l.indexOf(' ') + 1)
    })
    expect(texts.filter((t, i) => t === texts[i - 1])).toEqual([])
    expect(texts[0]).toBe('no run in flight; nodes: 3 untouched')
    for (const wave of [1, 2, 3])
      expect(texts).toContainEqual(
        expect.stringMatching(
          new RegExp(`^run \\S+ toward 3\\.28\\.0: wave ${wave}/3; \\d+s elapsed(, ETA \\d+s)?; policy .+; nodes: `),
        ),
      )
    expect(texts.at(-1)).toMatch(/^run \S+ complete: every selected node is completed \(3\)$/)
  })

  it('a node of the run rolled back: the watch exits 3 naming it, as the run does', async () => {
    const w = await open({
      nodes: [World.nodeName('a', 'sf', 1), World.nodeName('vfail', 'sf', 2), World.nodeName('z', 'sf', 3)].map(
        (name) => ({ name }),
      ),
      version: '3.27.0',
    })
    const watch = await startWatch(w)
    const run = await w.upgrade('3.28.0', ['--batch-size', '1'])
    expect(run.code, run.stderr).toBe(3)
    const { code, lines, stderr } = await watch.ended
    expect(code, `${lines.join('\n')}\n${stderr}`).toBe(3)
    expect(lines.at(-1)).toMatch(new RegExp(`run \\S+ stopped: rolled back: ${w.nodeNames[1]}$`))
  })
})
