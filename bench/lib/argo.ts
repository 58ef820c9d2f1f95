// Argo mode in the bench: the chart's deploy-version through the test bed's real workflow-controller,
// its step pods on the test bed's real kubelet node, the fleet kwok's. The test bed's own scripts
// start them (scripts/testbed/real-node.sh, argo-controller.sh, scripts/image/build-local.sh); the
// analysis reads the finished Workflow and its pods.
import path from 'node:path'
import { must } from './proc.js'

export interface ArgoBed {
  /** The real node the step pods run on. */
  node: string
  /** The kata-lcm image with the kata-deploy charts in /opt/kata-deploy-charts. */
  image: string
  /** Where the WorkflowTemplates are installed and the workflows run. */
  namespace: string
  stop(): Promise<void>
}

/** One line `KEY=value` of a script's output. */
function valueOf(out: string, key: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`${key}=`))
  if (!line) throw new Error(`no ${key}= in:\n${out}`)
  return line.slice(key.length + 1)
}

/** The real node, the image and the controller on cluster `cluster`. */
export async function startArgoBed(
  root: string,
  cluster: string,
  chartsDir: string,
  env: NodeJS.ProcessEnv,
): Promise<ArgoBed> {
  const testbed = path.join(root, 'scripts/testbed')
  const node = valueOf(await must('bash', [path.join(testbed, 'real-node.sh'), 'up', cluster], env), 'NODE')
  try {
    const [image, tar] = (
      await must('bash', [path.join(root, 'scripts/image/build-local.sh'), 'with-charts', chartsDir], env)
    )
      .trim()
      .split(' ') as [string, string]
    await must('bash', [path.join(testbed, 'real-node.sh'), 'import', cluster, image, tar], env)
    const namespace = 'argo-bench'
    await must('bash', [path.join(testbed, 'argo-controller.sh'), 'start', cluster, namespace], env)
    return {
      node,
      image,
      namespace,
      stop: async () => {
        await must('bash', [path.join(testbed, 'argo-controller.sh'), 'stop', cluster], env).catch(() => '')
        await must('bash', [path.join(testbed, 'real-node.sh'), 'down', cluster], env).catch(() => '')
      },
    }
  } catch (error) {
    await must('bash', [path.join(testbed, 'real-node.sh'), 'down', cluster], env).catch(() => '')
    throw error
  }
}

export interface WfNode {
  type: string
  templateName?: string
  displayName?: string
  phase?: string
  startedAt?: string
  finishedAt?: string
  inputs?: { parameters?: { name: string; value?: string }[] }
  outputs?: { parameters?: { name: string; value?: string }[] }
}

export interface Workflow {
  status?: { phase?: string; startedAt?: string; finishedAt?: string; nodes?: Record<string, WfNode> }
}

/** A step pod as the cluster saw it: when its main container (kata-lcm) ran. */
export interface StepPod {
  /** The workflow node id (the pod's `workflows.argoproj.io/node-id` annotation... or its name). */
  nodeName: string
  mainStartedAt?: string
  mainFinishedAt?: string
}

export interface ArgoAnalysis {
  phase: string
  wallS: number
  /** Each run-wave node's duration, in wave order. */
  waveS: number[]
  stepPods: number
  /** Mean life of a step pod (the Workflow's pod node: scheduled → finished). */
  podLifeMeanS: number
  /** kata-lcm's own time in a step pod (its main container's run), median and mean. */
  kataLcmStepMedianS: number
  kataLcmStepMeanS: number
  /**
   * Of kata-lcm's time in a wave step, its own outputs' split, median: before the wave's handlers
   * (from the process's start: Node, the lease, the record, the nodes) and in them. NaN without them.
   */
  kataLcmBeforeMedianS: number
  kataLcmHandlersMedianS: number
  /** A wave step's peak resident memory (its `peak-rss-mb` output), median and max over the steps, MB. */
  stepPeakRssMedianMb: number
  stepPeakRssMaxMb: number
  /** The controller's share: the time between one step pod's end and the next one's start, summed. */
  betweenPodsS: number
  /** The Workflow object's size (its JSON), kB. */
  workflowKB: number
}

const ms = (t?: string) => (t ? Date.parse(t) : NaN)
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** The numbers of one finished deploy-version workflow. Pure. */
export function analyzeWorkflow(wf: Workflow, pods: readonly StepPod[]): ArgoAnalysis {
  const nodes = Object.values(wf.status?.nodes ?? {})
  const podNodes = nodes
    .filter((n) => n.type === 'Pod' && n.startedAt && n.finishedAt)
    .sort((a, b) => ms(a.startedAt) - ms(b.startedAt))
  const waves = nodes
    .filter((n) => n.templateName === 'run-wave' && n.startedAt && n.finishedAt)
    .sort((a, b) => ms(a.startedAt) - ms(b.startedAt))
  const lives = podNodes.map((n) => (ms(n.finishedAt) - ms(n.startedAt)) / 1000)
  let between = 0
  for (let i = 1; i < podNodes.length; i++)
    between += Math.max(0, ms(podNodes[i]!.startedAt) - ms(podNodes[i - 1]!.finishedAt)) / 1000
  const output = (name: string) =>
    podNodes
      .filter((n) => n.templateName === 'wave-phase')
      .map((n) => Number(n.outputs?.parameters?.find((p) => p.name === name)?.value))
      .filter((v) => Number.isFinite(v) && v > 0)
  const seconds = (name: string) => output(name).map((ms) => ms / 1000)
  const mains = pods
    .filter((p) => p.mainStartedAt && p.mainFinishedAt)
    .map((p) => (ms(p.mainFinishedAt) - ms(p.mainStartedAt)) / 1000)
  return {
    phase: wf.status?.phase ?? '?',
    wallS: round((ms(wf.status?.finishedAt) - ms(wf.status?.startedAt)) / 1000, 1),
    waveS: waves.map((w) => round((ms(w.finishedAt) - ms(w.startedAt)) / 1000, 1)),
    stepPods: podNodes.length,
    podLifeMeanS: round(lives.reduce((a, b) => a + b, 0) / Math.max(1, lives.length)),
    kataLcmStepMedianS: round(median(mains)),
    kataLcmStepMeanS: round(mains.reduce((a, b) => a + b, 0) / Math.max(1, mains.length)),
    kataLcmBeforeMedianS: round(median(seconds('before-ms'))),
    kataLcmHandlersMedianS: round(median(seconds('handlers-ms'))),
    stepPeakRssMedianMb: round(median(output('peak-rss-mb')), 0),
    stepPeakRssMaxMb: Math.max(0, ...output('peak-rss-mb')),
    betweenPodsS: round(between, 1),
    workflowKB: round(JSON.stringify(wf).length / 1024, 1),
  }
}
