/**
 * TEST CODE: a stand-in for kata-deploy 3.28.0's restart hazard on kwok nodes, where no container
 * runs. On a real node, that kata-deploy's cleanup on SIGTERM restarts containerd, and the Kata pods
 * running there crash and are restarted by the kubelet (kata-containers#12761; kata-deploy-facts.md).
 * What the cluster then shows is what this plays: when a node's kata-deploy pod goes (terminating or
 * deleted), every Kata pod on that node in `workloadNamespace` gets its containers restarted in its
 * status, as the kubelet reports it: `restartCount` + 1, `lastState.terminated`, a new
 * `state.running.startedAt`.
 */
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node'
import { loadKubeConfig } from './cluster.js'
import { followList } from './wait.js'

export interface RestartHazard {
  /** `namespace/name` of every Kata pod restarted so far, in order. */
  restarted: string[]
  stop(): void
}

export function startRestartHazard(options: {
  /** The kata-deploy release's namespace (its pods are labelled `name=kata-deploy`). */
  kataDeployNamespace: string
  /** Where the Kata workloads live. */
  workloadNamespace: string
  /** The Kata RuntimeClasses the workloads name. */
  kataClasses: string[]
}): RestartHazard {
  const kc = loadKubeConfig()
  const core = kc.makeApiClient(CoreV1Api)
  const live = new Map<string, string>() // node -> uid of its live kata-deploy pod
  const gone = new Set<string>() // kata-deploy pod uids already acted on
  const restarted: string[] = []
  let chain = Promise.resolve()

  const restartKataPodsOn = async (node: string) => {
    const pods = await core.listNamespacedPod({
      namespace: options.workloadNamespace,
      fieldSelector: `spec.nodeName=${node}`,
    })
    for (const pod of pods.items.filter((p) => options.kataClasses.includes(p.spec?.runtimeClassName ?? ''))) {
      await restart(core, pod)
      restarted.push(`${pod.metadata!.namespace}/${pod.metadata!.name}`)
    }
  }

  const pods = followList<V1Pod>(
    kc,
    `/api/v1/namespaces/${options.kataDeployNamespace}/pods`,
    (items) => {
      const seen = new Map<string, string>()
      for (const p of items)
        if (p.spec?.nodeName && !p.metadata?.deletionTimestamp) seen.set(p.spec.nodeName, p.metadata!.uid!)
      for (const [node, uid] of live) {
        if (seen.get(node) === uid || gone.has(uid)) continue
        gone.add(uid)
        chain = chain.then(() => restartKataPodsOn(node)).catch(() => undefined)
      }
      for (const [node, uid] of seen) live.set(node, uid)
    },
    { labelSelector: 'name=kata-deploy' },
  )
  return { restarted, stop: () => pods.stop() }
}

/** The pod's containers restarted, as the kubelet reports it. */
async function restart(core: CoreV1Api, pod: V1Pod): Promise<void> {
  const fresh = await core.readNamespacedPodStatus({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name! })
  const now = new Date()
  fresh.status!.containerStatuses = (fresh.status?.containerStatuses ?? []).map((c) => ({
    ...c,
    restartCount: (c.restartCount ?? 0) + 1,
    lastState: {
      terminated: {
        exitCode: 137,
        reason: 'Error',
        startedAt: c.state?.running?.startedAt ?? now,
        finishedAt: now,
      },
    },
    state: { running: { startedAt: now } },
  }))
  await core.replaceNamespacedPodStatus({
    namespace: pod.metadata!.namespace!,
    name: pod.metadata!.name!,
    body: fresh,
  })
}
