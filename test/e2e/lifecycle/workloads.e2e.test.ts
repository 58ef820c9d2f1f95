/**
 * Did the Kata workloads already running on a node come through its upgrade? On a real control plane
 * with kwok nodes: a Kata pod (a Kata RuntimeClass, Running) on each node, and the test code that
 * plays kata-deploy 3.28.0's restart hazard (harness/kata-restart-hazard.ts: a node's Kata pods
 * restart when its kata-deploy pod goes). The pod is named on its node, in a Warning Event, in the
 * report and in `status`; with `--on-workload-disruption stop` the next wave never starts.
 */
import { CoreV1Api, NodeV1Api } from '@kubernetes/client-node'
import { afterEach, describe, expect, it } from 'vitest'
import { startRestartHazard, type RestartHazard } from '../harness/kata-restart-hazard.js'
import { waitForList } from '../harness/wait.js'
import { useWorlds, World, type CliResult } from './world.js'

const open = useWorlds()
const DISRUPTED = 'kata-lcm.katacontainers.io/disrupted-workloads'
let hazard: RestartHazard | undefined
let runtimeClass: string | undefined

afterEach(async () => {
  hazard?.stop()
  hazard = undefined
  if (runtimeClass)
    await new World({ nodes: [], version: '' }).kc
      .makeApiClient(NodeV1Api)
      .deleteRuntimeClass({ name: runtimeClass })
      .catch(() => undefined)
  runtimeClass = undefined
})

/** A Running Kata pod (and a runc one) on each of the world's nodes. */
async function kataPods(w: World, kata: string): Promise<void> {
  const core = w.kc.makeApiClient(CoreV1Api)
  for (const [i, node] of w.nodeNames.entries())
    for (const [name, runtimeClassName] of [
      [`kata-app-${i + 1}`, kata],
      [`runc-app-${i + 1}`, undefined],
    ] as const)
      await core.createNamespacedPod({
        namespace: w.namespace,
        body: {
          metadata: { name, labels: { app: 'workload' } },
          spec: {
            nodeName: node,
            ...(runtimeClassName ? { runtimeClassName } : {}),
            tolerations: [{ operator: 'Exists' }],
            containers: [{ name: 'app', image: 'registry.example/app:1' }],
          },
        },
      })
  await waitForList<{ metadata?: { name?: string }; status?: { phase?: string } }>(
    w.kc,
    `/api/v1/namespaces/${w.namespace}/pods`,
    (pods) => pods.length === 2 * w.nodeNames.length && pods.every((p) => p.status?.phase === 'Running'),
    60_000,
    { labelSelector: 'app=workload' },
  )
}

const json = (r: CliResult) => JSON.parse(r.stdout) as { outcome: string; nodes: Record<string, unknown>[] }

describe('Kata workloads through an upgrade', () => {
  it('a Kata pod restarted during its wave is named on its node and in the report; with stop the next wave never starts', async () => {
    const w = await open({
      nodes: [1, 2].map((i) => ({ name: World.nodeName('wl', 'kata', i) })),
      version: '3.27.0',
    })
    const [one, two] = w.nodeNames as [string, string]
    runtimeClass = `kata-e2e-${w.id}`
    await w.kc
      .makeApiClient(NodeV1Api)
      .createRuntimeClass({ body: { metadata: { name: runtimeClass }, handler: 'kata-qemu' } })
    await kataPods(w, runtimeClass)
    hazard = startRestartHazard({
      kataDeployNamespace: w.namespace,
      workloadNamespace: w.namespace,
      kataClasses: [runtimeClass],
    })

    const stopped = await w.upgrade('3.28.0', ['--batch-size', '1', '--on-workload-disruption', 'stop', '--json'])
    expect(stopped.code, stopped.stderr).toBe(3)
    expect(json(stopped).outcome).toBe('workloads-disrupted')
    expect(json(stopped).nodes.find((n) => n.name === one)).toMatchObject({
      status: 'completed',
      disruptedWorkloads: [`${w.namespace}/kata-app-1 restarted`],
    })
    // Only the Kata pod restarted (containerd's restart leaves runc containers to their shims); the
    // runc pod beside it came through and is not named.
    expect(hazard.restarted).toEqual([`${w.namespace}/kata-app-1`])
    expect((await w.node(one)).annotations[DISRUPTED]).toBe(`${w.namespace}/kata-app-1 restarted`)
    expect((await w.node(one)).annotations).not.toHaveProperty('kata-lcm.katacontainers.io/kata-workloads')
    expect((await w.node(two)).status).toBeUndefined()
    const events = await w.core.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: `involvedObject.name=${one},reason=KataWorkloadsDisrupted`,
    })
    expect(events.items.map((e) => [e.type, e.message])).toEqual([
      ['Warning', expect.stringContaining(`${w.namespace}/kata-app-1 restarted`)],
    ])
    const status = await w.cli(['status', '--node-selector', `kata-lcm.test/world=${w.id}`])
    expect(status.stdout).toContain(`Kata pods disrupted by its upgrade: ${w.namespace}/kata-app-1 restarted`)

    // Rerun with report: the next wave runs, its Kata pod is named too, and the run succeeds.
    const resumed = await w.upgrade('3.28.0', ['--batch-size', '1', '--json'])
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(json(resumed).nodes.find((n) => n.name === two)).toMatchObject({
      status: 'completed',
      disruptedWorkloads: [`${w.namespace}/kata-app-2 restarted`],
    })
    expect((await w.node(two)).annotations[DISRUPTED]).toBe(`${w.namespace}/kata-app-2 restarted`)
  })
})
