import type { PodView } from '../../ports/cluster.port.js'

/**
 * Waiting reasons a container does not come out of by itself: a bad image name or a missing
 * never-pull image, a config that cannot be built (a missing Secret or ConfigMap key), a runtime
 * that cannot create or start it, or a crash loop. A pod judged on its start (a verification pod, a
 * node's fresh kata-deploy pod) fails at once on one, rather than at its deadline. One list for
 * every such judgement.
 */
const HOPELESS_WAITING: ReadonlySet<string> = new Set([
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'CrashLoopBackOff',
])

/** The pod's first container waiting for a reason it will not come out of, if any. Pure. */
export function hopelessContainer(pod: PodView): PodView['containers'][number] | undefined {
  return pod.containers.find((c) => c.state === 'waiting' && c.reason !== undefined && HOPELESS_WAITING.has(c.reason))
}
