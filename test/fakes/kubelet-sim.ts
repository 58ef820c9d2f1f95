import type { ContainerView, Taint } from '../../src/ports/cluster.port.js'
import type { ClusterStore, StoredPod, Toleration } from './cluster-store.js'

/**
 * What the simulated scheduler + kubelet do with a pod created through `createPod` (the
 * verification pods), chosen per node by the test:
 * - succeed: Pending -> Running -> Succeeded (exit 0)
 * - fail: Pending -> Running -> Failed (exit 1)
 * - exit-before-phase: a container terminates non-zero while the phase still says Running
 * - crashloop: container waiting CrashLoopBackOff
 * - pending: scheduled, but the container stays ContainerCreating for ever
 * - unschedulable: never scheduled (PodScheduled=False, Unschedulable)
 * - never-seen: the create call succeeds, but the pod never shows up in lists or watches
 */
export type VerificationBehaviour =
  'succeed' | 'fail' | 'exit-before-phase' | 'crashloop' | 'pending' | 'unschedulable' | 'never-seen'

export interface VerificationScript {
  behaviour: VerificationBehaviour
  exitCode?: number
  /** What `kubectl logs` would show. */
  logTail?: string[]
  /** Running -> finished, overriding the cluster's timing. */
  runMs?: number
}

export function toScript(value: VerificationBehaviour | VerificationScript | undefined): VerificationScript {
  if (value === undefined) return { behaviour: 'succeed' }
  return typeof value === 'string' ? { behaviour: value } : value
}

/** The node a pod is meant for: spec.nodeName, else a kubernetes.io/hostname nodeSelector. */
export function targetNodeOf(spec: StoredPod['spec']): string | undefined {
  return spec.nodeName ?? spec.nodeSelector['kubernetes.io/hostname']
}

function tolerates(tolerations: readonly Toleration[], taint: Taint): boolean {
  return tolerations.some((t) => {
    if (t.effect && t.effect !== taint.effect) return false
    if (t.operator === 'Exists') return !t.key || t.key === taint.key
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '')
  })
}

/** Why the scheduler would refuse the pod on its node, or undefined when it fits. */
function unschedulableReason(store: ClusterStore, pod: StoredPod): string | undefined {
  const nodeName = targetNodeOf(pod.spec)
  const node = nodeName === undefined ? undefined : store.nodes.get(nodeName)
  if (node === undefined)
    return `0/${store.nodes.size} nodes are available: ${store.nodes.size} node(s) didn't match Pod's node affinity/selector.`
  if (pod.spec.nodeName !== undefined) return undefined // bound: the scheduler is bypassed
  const selectorMismatch = Object.entries(pod.spec.nodeSelector).some(([k, v]) => node.labels[k] !== v)
  if (selectorMismatch)
    return `0/${store.nodes.size} nodes are available: 1 node(s) didn't match Pod's node affinity/selector.`
  const taints: Taint[] = [
    ...(node.unschedulable ? [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] : []),
    ...node.taints,
  ]
  const untolerated = taints.find(
    (t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerates(pod.spec.tolerations, t),
  )
  if (untolerated === undefined) return undefined
  return untolerated.key === 'node.kubernetes.io/unschedulable'
    ? `0/${store.nodes.size} nodes are available: 1 node(s) were unschedulable.`
    : `0/${store.nodes.size} nodes are available: 1 node(s) had untolerated taint {${untolerated.key}: ${untolerated.value ?? ''}}.`
}

function setContainers(pod: StoredPod, state: Omit<ContainerView, 'name' | 'image'>): void {
  pod.view.containers = pod.view.containers.map((c) => ({
    ...state,
    name: c.name,
    ...(c.image ? { image: c.image } : {}),
  }))
}

/** Drives a freshly stored verification pod through its life, step by step on the fake clock. */
export function runVerificationPod(store: ClusterStore, pod: StoredPod, script: VerificationScript): void {
  const t = store.timings
  pod.logTail = script.logTail ?? []
  store.after(pod, t.scheduleMs, () => {
    const reason =
      script.behaviour === 'unschedulable'
        ? `0/${store.nodes.size} nodes are available: 1 node(s) had volume node affinity conflict.`
        : unschedulableReason(store, pod)
    if (reason !== undefined) {
      pod.view.conditions = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: reason }]
      pod.events.push(`FailedScheduling: ${reason}`)
      return
    }
    const node = targetNodeOf(pod.spec)!
    pod.view.nodeName = node
    pod.view.conditions = [{ type: 'PodScheduled', status: 'True' }]
    setContainers(pod, { state: 'waiting', reason: 'ContainerCreating', ready: false, restartCount: 0 })
    pod.events.push(`Scheduled: Successfully assigned ${pod.view.namespace}/${pod.view.name} to ${node}`)
    if (script.behaviour === 'pending') return
    store.after(pod, t.startMs, () => {
      pod.view.phase = 'Running'
      if (script.behaviour === 'crashloop') {
        setContainers(pod, {
          state: 'waiting',
          reason: 'CrashLoopBackOff',
          message: 'back-off 40s restarting failed container',
          ready: false,
          restartCount: 3,
        })
        pod.events.push('BackOff: Back-off restarting failed container')
        return
      }
      setContainers(pod, { state: 'running', ready: true, restartCount: 0 })
      pod.view.ready = true
      pod.events.push('Started: Started container')
      store.after(pod, script.runMs ?? t.runMs, () => finish(pod, script))
    })
  })
}

function finish(pod: StoredPod, script: VerificationScript): void {
  pod.view.ready = false
  if (script.behaviour === 'succeed') {
    pod.view.phase = 'Succeeded'
    setContainers(pod, { state: 'terminated', reason: 'Completed', exitCode: 0, ready: false, restartCount: 0 })
    return
  }
  const exitCode = script.exitCode ?? 1
  setContainers(pod, { state: 'terminated', reason: 'Error', exitCode, ready: false, restartCount: 0 })
  // exit-before-phase: the container status arrives, the pod phase update never does.
  if (script.behaviour === 'fail') pod.view.phase = 'Failed'
}
