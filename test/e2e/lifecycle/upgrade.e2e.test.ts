import { AppsV1Api, PolicyV1Api } from '@kubernetes/client-node'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseMetrics } from '../harness/promcheck.js'
import { waitForList, type KubeObject } from '../harness/wait.js'
import { describe, expect, it } from 'vitest'
import { chartPath, useWorlds, World } from './world.js'

const open = useWorlds()

describe('kata-lcm upgrade (daemonset mode, real control plane)', () => {
  it('upgrades one node: cordon, new pod at the new revision, verify, uncordon, annotate', async () => {
    const id = 'one'
    const w = await open({ nodes: [{ name: World.nodeName('n', id, 1) }], version: '3.27.0' })
    const result = await w.upgrade('3.28.0')
    expect(result.code, result.stderr).toBe(0)
    const node = await w.node(w.nodeNames[0]!)
    expect(node).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
    expect(node.annotations['kata-lcm.katacontainers.io/previous-version']).toBe('3.27.0')
    expect(node.annotations['kata-lcm.katacontainers.io/cordoned-by-kata-lcm']).toBeUndefined()
    expect(await w.release()).toMatchObject({ chartVersion: '3.28.0', status: 'deployed' })
    const pods = await w.kataDeployPods()
    expect(pods[w.nodeNames[0]!]).toMatchObject({ current: true, ready: true })
    expect(pods[w.nodeNames[0]!]!.image).toMatch(/:3\.28\.0$/)
    // finalize put the operator's own values back: no OnDelete, no emptied verification pod left behind
    const values = await w.userValues()
    expect(values.updateStrategy).toBeUndefined()
    expect(values.verification).toBeUndefined()
  })

  it("plans before the lock and again under it with no helm process reading the release (`helm status` lists every pod of it): the release and its install come from helm's storage Secret, and the second plan reuses what did not change", async () => {
    const w = await open({ nodes: [{ name: World.nodeName('n', 'twice', 1) }], version: '3.27.0' })
    const result = await w.cli(w.upgradeArgs('3.28.0'), { DEBUG: 'kata-lcm:helm' })
    expect(result.code, result.stderr).toBe(0)
    const started = (verb: string) =>
      result.stderr.split('\n').filter((l) => new RegExp(`kata-lcm:helm helm ${verb} `).test(l)).length
    expect(started('status')).toBe(0)
    // The release is read in both plans and by the run, from helm's storage; each chart checked once.
    expect(started('get metadata')).toBe(0)
    expect(started('show chart')).toBe(2)
    expect(await w.node(w.nodeNames[0]!)).toMatchObject({ status: 'completed', version: '3.28.0' })
  })

  it('upgrades three nodes node by node and records the story as node Events', async () => {
    const w = await open({
      nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('n', 'three', i) })),
      version: '3.27.0',
    })
    const result = await w.upgrade('3.28.0')
    expect(result.code, result.stderr).toBe(0)
    for (const name of w.nodeNames)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
    const pods = await w.kataDeployPods()
    expect(Object.values(pods).every((p) => p.current && p.image.endsWith(':3.28.0'))).toBe(true)
    expect(result.stderr).toMatch(/wave 3\/3/)
    // This node object's Events only (by uid): an earlier run's node of the same name left its own.
    const uid = (await w.core.readNode({ name: w.nodeNames[1]! })).metadata!.uid!
    const events = await w.core.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: `involvedObject.uid=${uid},involvedObject.kind=Node`,
    })
    // kata-lcm's Events (the node controller records its own, RegisteredNode): the start with the
    // cordon (one write), and the verdict; the routine steps between have no Event of their own.
    const ours = events.items.filter((e) => e.source?.component === 'kata-lcm' || e.reportingComponent === 'kata-lcm')
    expect(ours.map((e) => e.reason).sort()).toEqual(['KataUpgradeCompleted', 'KataUpgradeCordoned'])
  })

  it('selects by label, by taint, and by both (ANDed)', async () => {
    const taint = { key: 'maintenance', value: 'pending', effect: 'NoSchedule' }
    const w = await open({
      nodes: [
        { name: World.nodeName('sel', 'x', 'a'), labels: { pool: 'kata' } },
        { name: World.nodeName('sel', 'x', 'b'), labels: { pool: 'kata' }, taints: [taint] },
        { name: World.nodeName('sel', 'x', 'c'), taints: [taint] },
        { name: World.nodeName('sel', 'x', 'd') },
      ],
      version: '3.27.0',
    })
    const [a, b, c, d] = w.nodeNames as [string, string, string, string]
    const plan = async (extra: string[]) => {
      const r = await w.upgrade('3.28.0', ['--dry-run', '--json', ...extra])
      expect(r.code, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as { waves: string[][] }).waves.flat()
    }
    expect(await plan(['--node-selector', `pool=kata,kata-lcm.test/world=${w.id}`])).toEqual([a, b])
    expect(await plan(['--node-selector', `kata-lcm.test/world=${w.id}`, '--node-taint-key', 'maintenance'])).toEqual([
      b,
      c,
    ])
    const none = await w.upgrade('3.28.0', [
      '--dry-run',
      '--node-selector',
      `kata-lcm.test/world=${w.id}`,
      '--node-taint-key',
      'maintenance',
      '--node-taint-value',
      'other',
    ])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/no node matches/)
    const real = await w.upgrade('3.28.0', [
      '--node-selector',
      `pool=kata,kata-lcm.test/world=${w.id}`,
      '--node-taint-key',
      'maintenance',
      '--node-taint-value',
      'pending',
    ])
    expect(real.code, real.stderr).toBe(0)
    expect(await w.node(b)).toMatchObject({ status: 'completed', version: '3.28.0' })
    for (const other of [a, c, d]) expect((await w.node(other)).status).toBeUndefined()
    const pods = await w.kataDeployPods()
    expect(pods[b]!.image).toMatch(/:3\.28\.0$/)
    for (const other of [a, c, d]) expect(pods[other]!.image).toMatch(/:3\.27\.0$/)
  })

  it('a failed verification rolls that node back and stops before the next node', async () => {
    const w = await open({
      nodes: [World.nodeName('a', 'vf', 1), World.nodeName('vfail', 'vf', 2), World.nodeName('z', 'vf', 3)].map(
        (name) => ({ name }),
      ),
      version: '3.27.0',
    })
    const [first, failing, untouched] = w.nodeNames as [string, string, string]
    const started = Date.now()
    const result = await w.upgrade('3.28.0', ['--verification-timeout', '120s'])
    expect(result.code, result.stderr).toBe(3)
    // a Failed pod fails the node at once, not at the 120 s timeout
    expect(Date.now() - started).toBeLessThan(90_000)
    expect(await w.node(first)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
    const rolled = await w.node(failing)
    expect(rolled).toMatchObject({ status: 'rolled-back', version: '3.27.0', unschedulable: false })
    expect(rolled.annotations['kata-lcm.katacontainers.io/last-error']).toMatch(/exited 1/)
    expect(await w.node(untouched)).toMatchObject({ status: undefined, unschedulable: false })
    expect(await w.release()).toMatchObject({ chartVersion: '3.27.0', status: 'deployed' })
    const pods = await w.kataDeployPods()
    expect(pods[first]!.image).toMatch(/:3\.28\.0$/)
    expect(pods[failing]).toMatchObject({ current: true, ready: true })
    expect(pods[failing]!.image).toMatch(/:3\.27\.0$/)
    expect(pods[untouched]!.image).toMatch(/:3\.27\.0$/)
    expect(result.stdout).toMatch(/MIXED/)
    expect(result.stdout).toMatch(/verification evidence for vfail-/)
  })

  it('a kata-deploy pod that never becomes Ready is rolled back, never put back in service as is', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('n', 'wr', 1) }], version: '3.27.0' })
    const result = await w.upgrade('3.30.0')
    expect(result.code, result.stderr).toBe(3)
    const node = await w.node(w.nodeNames[0]!)
    expect(node).toMatchObject({ status: 'rolled-back', version: '3.27.0', unschedulable: false })
    expect(node.annotations['kata-lcm.katacontainers.io/last-error']).toMatch(/CrashLoopBackOff/)
    expect(await w.release()).toMatchObject({ chartVersion: '3.27.0' })
    expect(Object.values(await w.kataDeployPods())[0]).toMatchObject({ ready: true, current: true })
  })

  it('leaves a node the operator cordoned cordoned', async () => {
    const w = await open({
      nodes: [{ name: World.nodeName('n', 'oc', 1) }, { name: World.nodeName('n', 'oc', 2), unschedulable: true }],
      version: '3.27.0',
    })
    const result = await w.upgrade('3.28.0', ['--batch-size', '2'])
    expect(result.code, result.stderr).toBe(0)
    expect(await w.node(w.nodeNames[0]!)).toMatchObject({ status: 'completed', unschedulable: false })
    const kept = await w.node(w.nodeNames[1]!)
    expect(kept).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: true })
    expect(kept.annotations['kata-lcm.katacontainers.io/was-unschedulable']).toBe('true')
    const status = await w.cli(['status', '--json', '--node-selector', `kata-lcm.test/world=${w.id}`])
    const rows = (JSON.parse(status.stdout) as { rows: { node: string; cordonedBy?: string; kataDeployPod: string }[] })
      .rows
    expect(rows.find((r) => r.node === w.nodeNames[1])).toMatchObject({
      cordonedBy: 'operator',
      kataDeployPod: 'current',
    })
  })

  it('rollback NODE puts one node back on the version it ran before', async () => {
    const w = await open({ nodes: [1, 2].map((i) => ({ name: World.nodeName('n', 'rb', i) })), version: '3.27.0' })
    expect((await w.upgrade('3.28.0', ['--batch-size', '2'])).code).toBe(0)
    const [target, other] = w.nodeNames as [string, string]
    const result = await w.cli([
      'rollback',
      target,
      '--chart',
      chartPath('3.27.0'),
      '--verification-pod',
      w.verificationFile,
      '--verification-namespace',
      w.namespace,
    ])
    expect(result.code, result.stderr).toBe(0)
    expect(await w.node(target)).toMatchObject({ status: 'rolled-back', version: '3.27.0', unschedulable: false })
    expect(await w.node(other)).toMatchObject({ status: 'completed', version: '3.28.0' })
    const pods = await w.kataDeployPods()
    expect(pods[target]!.image).toMatch(/:3\.27\.0$/)
    expect(pods[other]!.image).toMatch(/:3\.28\.0$/)
    const status = await w.cli(['status', '--json', '--node-selector', `kata-lcm.test/world=${w.id}`])
    const rows = (JSON.parse(status.stdout) as { rows: { node: string; kataDeployPod: string }[] }).rows
    expect(rows.find((r) => r.node === other)?.kataDeployPod).toBe('outdated')
  })

  it('--drain evicts workloads through the Eviction API; a PodDisruptionBudget that refuses a pod of the next wave stops the run before that wave, naming the pod (a dry-run eviction)', async () => {
    const names = [World.nodeName('a', 'dr', 1), World.nodeName('b', 'dr', 2)]
    const w = await open({ nodes: names.map((name) => ({ name })), version: '3.27.0' })
    const workload = (name: string, node: string) => ({
      metadata: { name, labels: { app: name } },
      spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] },
    })
    await w.core.createNamespacedPod({ namespace: w.namespace, body: workload('evictable', names[0]!) })
    await w.core.createNamespacedPod({ namespace: w.namespace, body: workload('guarded', names[1]!) })
    const policy = w.kc.makeApiClient(PolicyV1Api)
    await policy.createNamespacedPodDisruptionBudget({
      namespace: w.namespace,
      body: { metadata: { name: 'guard' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'guarded' } } } },
    })
    // Bare pods: no controller recreates them, so kubectl's rule wants --force (here --drain-force).
    const result = await w.upgrade('3.28.0', ['--drain', '--drain-force', '--drain-timeout', '5s'])
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr).toMatch(
      new RegExp(
        `--drain: wave 2 not started, 1 pod\\(s\\) cannot be evicted safely: ${w.namespace}/guarded on b-dr-2: a PodDisruptionBudget refuses its eviction now`,
      ),
    )
    expect(await w.node(names[0]!)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
    const pods = await w.core.listNamespacedPod({ namespace: w.namespace })
    expect(pods.items.map((p) => p.metadata?.name)).not.toContain('evictable')
    // The next wave's node was never touched.
    expect(await w.node(names[1]!)).toMatchObject({ status: undefined, unschedulable: false })
    expect(pods.items.map((p) => p.metadata?.name)).toContain('guarded')
  })

  it('--drain preflight: a PodDisruptionBudget that refuses a pod of the first wave refuses the run, writing nothing', async () => {
    const node = World.nodeName('a', 'pf', 1)
    const w = await open({ nodes: [{ name: node }], version: '3.27.0' })
    await w.apps.createNamespacedDeployment({
      namespace: w.namespace,
      body: {
        metadata: { name: 'shop' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'shop' } },
          template: {
            metadata: { labels: { app: 'shop' } },
            spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] },
          },
        },
      },
    })
    await waitForList(w.kc, `/api/v1/namespaces/${w.namespace}/pods`, (p) => p.length === 1, 30_000, {
      labelSelector: 'app=shop',
    })
    await w.kc.makeApiClient(PolicyV1Api).createNamespacedPodDisruptionBudget({
      namespace: w.namespace,
      body: { metadata: { name: 'shop' }, spec: { maxUnavailable: 0, selector: { matchLabels: { app: 'shop' } } } },
    })
    const since = new Date()
    const r = await w.upgrade('3.28.0', ['--drain'])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(
      new RegExp(
        `--drain: wave 1 not started, 1 pod\\(s\\) cannot be evicted safely: ${w.namespace}/shop-[a-z0-9-]+ on ${node}: a PodDisruptionBudget refuses its eviction now`,
      ),
    )
    expect(await w.writesSince(since)).toEqual([])
    // The dry-run eviction did reach the API server.
    const dryRuns = (await w.audit.events()).filter(
      (e) =>
        e.objectRef?.subresource === 'eviction' &&
        /dryRun=All/.test(e.requestURI) &&
        new Date(e.requestReceivedTimestamp) >= since,
    )
    expect(dryRuns.length).toBeGreaterThan(0)
  })

  it('--drain refuses an unmanaged pod and an emptyDir pod by name with zero writes, then evicts them with --drain-force and --drain-delete-emptydir-data', async () => {
    const names = [World.nodeName('a', 'drs', 1), World.nodeName('b', 'drs', 2)]
    const w = await open({ nodes: names.map((name) => ({ name })), version: '3.27.0' })
    await w.core.createNamespacedPod({
      namespace: w.namespace,
      body: {
        metadata: { name: 'lonely' },
        spec: { nodeName: names[0]!, containers: [{ name: 'c', image: 'busybox' }] },
      },
    })
    const apps = w.kc.makeApiClient(AppsV1Api)
    await apps.createNamespacedReplicaSet({
      namespace: w.namespace,
      body: {
        metadata: { name: 'cache' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'cache' } },
          template: {
            metadata: { labels: { app: 'cache' } },
            spec: {
              nodeSelector: { 'kubernetes.io/hostname': names[1]! },
              volumes: [{ name: 'scratch', emptyDir: {} }],
              containers: [{ name: 'c', image: 'busybox', volumeMounts: [{ name: 'scratch', mountPath: '/s' }] }],
            },
          },
        },
      },
    })
    await waitForList<KubeObject & { spec?: { nodeName?: string } }>(
      w.kc,
      `/api/v1/namespaces/${w.namespace}/pods`,
      (pods) => pods.some((p) => p.spec?.nodeName === names[1]),
      60_000,
      { labelSelector: 'app=cache' },
    )
    const since = new Date()
    const refused = await w.upgrade('3.28.0', ['--drain', '--batch-size', '2'])
    expect(refused.code, refused.stderr).toBe(2)
    const line = refused.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? ''
    expect(line).toMatch(/--drain: wave 1 not started, 2 pod\(s\) cannot be evicted safely/)
    expect(line).toContain(`${w.namespace}/lonely on ${names[0]}: no controller manages it`)
    expect(line).toMatch(
      new RegExp(`${w.namespace}/cache-[a-z0-9]+ on ${names[1]}: its emptyDir data \\(scratch\\) would be lost`),
    )
    expect(await w.writesSince(since)).toEqual([])
    const evictions = (await w.audit.events()).filter(
      (e) => e.objectRef?.subresource === 'eviction' && new Date(e.requestReceivedTimestamp) >= since,
    )
    expect(evictions).toEqual([])

    const allowed = await w.upgrade('3.28.0', [
      '--drain',
      '--batch-size',
      '2',
      '--drain-force',
      '--drain-delete-emptydir-data',
    ])
    expect(allowed.code, allowed.stderr).toBe(0)
    const left = (await w.core.listNamespacedPod({ namespace: w.namespace })).items.map((p) => p.metadata?.name ?? '')
    expect(left).not.toContain('lonely')
    for (const name of names)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
  })

  it('every duration at its maximum (24h): a run completes normally, no timer fires early', async () => {
    const w = await open({ nodes: [1, 2].map((i) => ({ name: World.nodeName('n', 'max', i) })), version: '3.27.0' })
    const result = await w.upgrade('3.28.0', [
      '--batch-size',
      '2',
      '--drain',
      '--verification-timeout',
      '24h',
      '--ready-timeout',
      '24h',
      '--drain-timeout',
      '24h',
      '--helm-timeout',
      '24h',
    ])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).not.toMatch(/TimeoutOverflowWarning/)
    for (const name of w.nodeNames)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
  })

  it('--dry-run prints the plan and writes nothing (audit log)', async () => {
    const w = await open({ nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('n', 'dry', i) })), version: '3.27.0' })
    const since = new Date()
    const result = await w.upgrade('3.28.0', ['--dry-run', '--batch-size', '2'])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/wave 1: .*n-dry-1, .*n-dry-2/)
    expect(result.stdout).toMatch(/helm upgrade kata-deploy .*--version 3\.28\.0/)
    expect(await w.writesSince(since)).toEqual([])
    for (const name of w.nodeNames)
      expect(await w.node(name)).toMatchObject({ status: undefined, unschedulable: false })
  })

  it("--metrics-file: the run in node_exporter textfile format, parsed by Prometheus' own parser (a node rolled back)", async () => {
    const w = await open({
      nodes: [World.nodeName('a', 'mf', 1), World.nodeName('vfail', 'mf', 2)].map((name) => ({ name })),
      version: '3.27.0',
    })
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'kata-lcm-metrics-')), 'kata-lcm.prom')
    const result = await w.upgrade('3.28.0', ['--batch-size', '1', '--metrics-file', file])
    expect(result.code, result.stderr).toBe(3)
    const families = await parseMetrics(await readFile(file, 'utf8'))
    const value = (name: string, labels: Record<string, string> = {}) =>
      families[name]?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
    expect(families['kata_lcm_run_info']?.samples[0]?.labels).toMatchObject({
      release: `${w.namespace}/kata-deploy`,
      from_version: '3.27.0',
      target_version: '3.28.0',
      mode: 'daemonset',
    })
    expect(value('kata_lcm_run_in_progress')).toBe(0)
    expect(value('kata_lcm_run_result', { outcome: 'rolled-back' })).toBe(1)
    expect(value('kata_lcm_run_nodes', { state: 'completed' })).toBe(1)
    expect(value('kata_lcm_run_nodes', { state: 'rolled-back' })).toBe(1)
    expect(value('kata_lcm_run_waves')).toBe(2)
    expect(families['kata_lcm_wave_duration_seconds']?.samples.map((s) => s.labels['wave']).sort()).toEqual(['1', '2'])
    expect(value('kata_lcm_run_duration_seconds')).toBeGreaterThan(0)
    for (const [name, family] of Object.entries(families)) {
      expect(name).toMatch(/^kata_lcm_[a-z_]+$/)
      expect(family.type).toBe('GAUGE')
    }
  })
})
