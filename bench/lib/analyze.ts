// Turns one run's CLI output + audit window into numbers: waves, phases, helm time, requests,
// reaction delays. Pure functions over parsed inputs.
import { countBy, isHelm, isKataLcm, isKwok, resourceKey, type Ev } from './audit.js'
import type { Line } from './proc.js'

export interface Stats {
  n: number
  min: number
  median: number
  p95: number
  max: number
  mean: number
}

export function stats(values: readonly number[]): Stats | undefined {
  if (values.length === 0) return undefined
  const s = [...values].sort((a, b) => a - b)
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!
  return {
    n: s.length,
    min: s[0]!,
    median: q(0.5),
    p95: q(0.95),
    max: s[s.length - 1]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  }
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d

export function roundStats(s: Stats | undefined, d = 3): Stats | undefined {
  if (!s) return undefined
  return {
    n: s.n,
    min: round(s.min, d),
    median: round(s.median, d),
    p95: round(s.p95, d),
    max: round(s.max, d),
    mean: round(s.mean, d),
  }
}

// ---------- CLI output ----------

export interface HelmCall {
  command: string
  startMs: number
  endMs: number
  ms: number
  ok: boolean
}
export interface WaveLines {
  wave: number
  nodes: string[]
  startMs: number
  endMs?: number
  phases: { phase: string; startMs: number }[]
  doneText?: string
}

const TS = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) (.*)$/

/** Parses the CI-mode progress lines (`<iso> wave i/n: ...`, `<iso> wave i <phase>: ...`, `<iso> wave i done: ...`) and DEBUG=kata-lcm:helm lines. */
export function parseCliOutput(lines: readonly Line[]): { waves: WaveLines[]; helm: HelmCall[] } {
  const waves = new Map<number, WaveLines>()
  const helm: HelmCall[] = []
  for (const l of lines) {
    if (l.stream !== 'err') continue
    const m = TS.exec(l.text)
    if (!m) continue
    const t = Date.parse(m[1]!)
    const text = m[2]!
    let w: RegExpExecArray | null
    if ((w = /^wave (\d+)\/(\d+): (.*)$/.exec(text))) {
      waves.set(Number(w[1]), { wave: Number(w[1]), nodes: w[3]!.split(', '), startMs: t, phases: [] })
    } else if ((w = /^wave (\d+) done: (.*)$/.exec(text))) {
      const wave = waves.get(Number(w[1]))
      if (wave) {
        wave.endMs = t
        wave.doneText = w[2]!
      }
    } else if ((w = /^wave (\d+) (prepare|cordon|drain|upgrade|verify|complete|rollback): /.exec(text))) {
      waves.get(Number(w[1]))?.phases.push({ phase: w[2]!, startMs: t })
    } else if ((w = /^kata-lcm:helm \S+ (\S+): (ok|failed) in (\d+) ms/.exec(text))) {
      const ms = Number(w[3])
      helm.push({ command: w[1]!, startMs: t - ms, endMs: t, ms, ok: w[2] === 'ok' })
    }
  }
  return { waves: [...waves.values()].sort((a, b) => a.wave - b.wave), helm }
}

// ---------- one kata-lcm run ----------

export interface WaveStat {
  wave: number
  nodes: number
  durS: number
  phasesS: Record<string, number>
  helmS: number
  /** First kata-deploy pod delete by kata-lcm -> last replacement pod made Ready by kwok. */
  daemonSetPodsS?: number
  /** First verification pod created -> last one's final phase written by kwok. */
  verificationPodsS?: number
  /**
   * durS minus the time covered by the helm calls, the kata-deploy pod replacement and the
   * verification pods (the union: they overlap once verification starts during the upgrade): the
   * time only kata-lcm accounts for.
   */
  overheadS: number
}

export interface RunAnalysis {
  waves: WaveStat[]
  /** Nodes of the finished waves (all of them unless a run budget stopped the run). */
  nodesProcessed: number
  waveDurS?: Stats
  overheadS?: Stats
  /**
   * The test bed's floor for the waves: the sum over waves of the union of their pod work and helm
   * calls (the wave's time minus its overhead): what the waves would take at zero orchestration cost.
   */
  floorS: number
  helm: { calls: number; totalS: number; byCommand: Record<string, { calls: number; totalS: number }> }
  requests: {
    kataLcm: {
      total: number
      perNode: number
      byVerb: Record<string, number>
      byResource: Record<string, number>
      attributablePerNode?: Stats
      unattributed: number
    }
    helm: { total: number; perNode: number; byVerb: Record<string, number>; byResource: Record<string, number> }
  }
  /** Verification pod final phase (kwok's status write completed) -> kata-lcm's next request on that pod / node patch. */
  reaction: {
    pods: number
    toFirstActionS?: Stats
    toNodePatchS?: Stats
    worst?: { pod: string; toNodePatchS: number }
    /** The same, only for pods on vfail-* nodes (their verification fails). */
    failed?: { pods: number; toFirstActionS?: Stats; toNodePatchS?: Stats }
  }
  /** Server-side latency (stageTimestamp - requestReceivedTimestamp) of kata-lcm's requests by kind, ms; watches excluded. */
  latencyMs: Record<string, Stats>
}

function latency(events: readonly Ev[]): Record<string, Stats> {
  const by = new Map<string, number[]>()
  for (const e of events) {
    if (e.verb === 'watch') continue
    const k = resourceKey(e)
    if (!by.has(k)) by.set(k, [])
    by.get(k)!.push(e.end - e.t)
  }
  const out: Record<string, Stats> = {}
  for (const [k, v] of [...by].sort((a, b) => b[1].length - a[1].length)) out[k] = roundStats(stats(v), 1)!
  return out
}

/** A time span [start, end] in epoch ms. */
type Span = [number, number]

/** The length of the union of `spans`, each clipped to `within`. */
export function unionMs(spans: readonly Span[], within: Span): number {
  const clipped = spans
    .map(([a, b]): Span => [Math.max(a, within[0]), Math.min(b, within[1])])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0])
  let total = 0
  let end = -Infinity
  for (const [a, b] of clipped) {
    if (b <= end) continue
    total += b - Math.max(a, end)
    end = b
  }
  return total
}

function verifPodNode(pod: string): string | undefined {
  const m = /^kata-verify-(.+)-[a-z0-9]{1,8}$/.exec(pod)
  return m ? m[1] : undefined
}

function uriNode(uri: string, nodes: ReadonlySet<string>): string | undefined {
  const dec = decodeURIComponent(uri)
  let m = /verification-for=([^&,]+)/.exec(dec)
  if (m && nodes.has(m[1]!)) return m[1]
  m = /metadata\.name=(kata-verify-[^&,]+)/.exec(dec)
  if (m) {
    const n = verifPodNode(m[1]!)
    if (n && nodes.has(n)) return n
  }
  m = /involvedObject\.name=(kata-verify-[^&,]+)/.exec(dec)
  if (m) {
    const n = verifPodNode(m[1]!)
    if (n && nodes.has(n)) return n
  }
  return undefined
}

/**
 * @param events   the run window's audit events (kata-lcm, helm, kwok)
 * @param oldPods  kata-deploy pod -> node before the run; newPods: after
 */
export function analyzeRun(input: {
  events: readonly Ev[]
  lines: readonly Line[]
  nodes: readonly string[]
  namespace: string
  oldPods: ReadonlyMap<string, string>
  newPods: ReadonlyMap<string, string>
}): RunAnalysis {
  const { events, nodes, namespace, oldPods, newPods } = input
  const nodeSet = new Set(nodes)
  const { waves: waveLines, helm } = parseCliOutput(input.lines)
  const lcm = events.filter(isKataLcm)
  const helmEvents = events.filter(isHelm)
  const kwokPodStatus = events.filter(
    (e) =>
      isKwok(e) &&
      e.resource === 'pods' &&
      e.subresource === 'status' &&
      e.namespace === namespace &&
      (e.verb === 'patch' || e.verb === 'update'),
  )

  // --- per wave ---
  const waves: WaveStat[] = []
  for (const w of waveLines) {
    if (w.endMs === undefined) continue
    const inWave = (e: Ev) => e.t >= w.startMs && e.t <= w.endMs! + 1
    const phasesS: Record<string, number> = {}
    w.phases.forEach((p, i) => {
      const next = w.phases[i + 1]?.startMs ?? w.endMs!
      phasesS[p.phase] = round((next - p.startMs) / 1000)
    })
    const helmCalls = helm.filter((h) => h.startMs >= w.startMs - 5 && h.endMs <= w.endMs! + 5)
    const helmMs = helmCalls.reduce((a, h) => a + h.ms, 0)
    const dsDeletes = lcm.filter(
      (e) =>
        inWave(e) && e.verb === 'delete' && e.resource === 'pods' && e.namespace === namespace && oldPods.has(e.name),
    )
    const dsReady = kwokPodStatus.filter((e) => inWave(e) && newPods.has(e.name))
    const ds: Span | undefined =
      dsDeletes.length && dsReady.length
        ? [Math.min(...dsDeletes.map((e) => e.t)), Math.max(...dsReady.map((e) => e.end))]
        : undefined
    const vCreates = lcm.filter(
      (e) =>
        inWave(e) && e.verb === 'create' && e.resource === 'pods' && e.subresource === '' && e.namespace === namespace,
    )
    const vFinal = kwokPodStatus.filter((e) => inWave(e) && e.name.startsWith('kata-verify-'))
    const v: Span | undefined =
      vCreates.length && vFinal.length
        ? [Math.min(...vCreates.map((e) => e.t)), Math.max(...vFinal.map((e) => e.end))]
        : undefined
    const [dsS, vS] = [ds, v].map((span) => (span ? (span[1] - span[0]) / 1000 : undefined))
    const durS = (w.endMs - w.startMs) / 1000
    const busyMs = unionMs(
      [...helmCalls.map((h): Span => [h.startMs, h.endMs]), ...(ds ? [ds] : []), ...(v ? [v] : [])],
      [w.startMs, w.endMs],
    )
    waves.push({
      wave: w.wave,
      nodes: w.nodes.length,
      durS: round(durS),
      phasesS,
      helmS: round(helmMs / 1000),
      ...(dsS !== undefined ? { daemonSetPodsS: round(dsS) } : {}),
      ...(vS !== undefined ? { verificationPodsS: round(vS) } : {}),
      overheadS: round(Math.max(0, durS - busyMs / 1000)),
    })
  }

  // --- helm time ---
  const byCommand: Record<string, { calls: number; totalS: number }> = {}
  for (const h of helm) {
    const c = (byCommand[h.command] ??= { calls: 0, totalS: 0 })
    c.calls++
    c.totalS = round(c.totalS + h.ms / 1000)
  }

  // --- requests ---
  const perNode = new Map<string, number>(nodes.map((n) => [n, 0]))
  let unattributed = 0
  for (const e of lcm) {
    let node: string | undefined
    if (e.resource === 'nodes' && nodeSet.has(e.name)) node = e.name
    else if (e.resource === 'pods' && e.name.startsWith('kata-verify-')) node = verifPodNode(e.name)
    else if (e.resource === 'pods' && oldPods.has(e.name)) node = oldPods.get(e.name)
    else node = uriNode(e.uri, nodeSet)
    if (node && perNode.has(node)) perNode.set(node, perNode.get(node)! + 1)
    else unattributed++
  }

  // --- reaction delays ---
  const verifPods = new Set(kwokPodStatus.filter((e) => e.name.startsWith('kata-verify-')).map((e) => e.name))
  const toFirst: number[] = []
  const toPatch: number[] = []
  const failFirst: number[] = []
  const failPatch: number[] = []
  let worst: { pod: string; toNodePatchS: number } | undefined
  for (const pod of verifPods) {
    const node = verifPodNode(pod)
    const del = lcm.find((e) => e.verb === 'delete' && e.resource === 'pods' && e.name === pod)
    const writes = kwokPodStatus.filter((e) => e.name === pod && (!del || e.t < del.t))
    const final = writes[writes.length - 1]
    if (!final || !node) continue
    const first = lcm.find((e) => e.t > final.end && (e.name === pod || e.uri.includes(pod)))
    const patch = lcm.find((e) => e.t > final.end && e.resource === 'nodes' && e.verb === 'patch' && e.name === node)
    if (first) toFirst.push((first.t - final.end) / 1000)
    if (node.startsWith('vfail-')) {
      if (first) failFirst.push((first.t - final.end) / 1000)
      if (patch) failPatch.push((patch.t - final.end) / 1000)
    }
    if (patch) {
      const d = (patch.t - final.end) / 1000
      toPatch.push(d)
      if (!worst || d > worst.toNodePatchS) worst = { pod, toNodePatchS: round(d) }
    }
  }

  const processed = waves.reduce((a, w) => a + w.nodes, 0)
  const n = processed > 0 ? processed : nodes.length
  return {
    waves,
    nodesProcessed: processed,
    waveDurS: roundStats(stats(waves.map((w) => w.durS))),
    overheadS: roundStats(stats(waves.map((w) => w.overheadS))),
    floorS: round(waves.reduce((a, w) => a + Math.max(0, w.durS - w.overheadS), 0)),
    helm: { calls: helm.length, totalS: round(helm.reduce((a, h) => a + h.ms, 0) / 1000), byCommand },
    requests: {
      kataLcm: {
        total: lcm.length,
        perNode: round(lcm.length / n, 2),
        byVerb: countBy(lcm, (e) => e.verb),
        byResource: countBy(lcm, resourceKey),
        attributablePerNode: roundStats(stats([...perNode.values()])),
        unattributed,
      },
      helm: {
        total: helmEvents.length,
        perNode: round(helmEvents.length / n, 2),
        byVerb: countBy(helmEvents, (e) => e.verb),
        byResource: countBy(helmEvents, resourceKey),
      },
    },
    reaction: {
      pods: verifPods.size,
      toFirstActionS: roundStats(stats(toFirst)),
      toNodePatchS: roundStats(stats(toPatch)),
      ...(worst ? { worst } : {}),
      ...(failPatch.length || failFirst.length
        ? {
            failed: {
              pods: Math.max(failFirst.length, failPatch.length),
              toFirstActionS: roundStats(stats(failFirst)),
              toNodePatchS: roundStats(stats(failPatch)),
            },
          }
        : {}),
    },
    latencyMs: latency(lcm),
  }
}

// ---------- the baseline script ----------

export interface BaselineAnalysis {
  nodesDone: number
  firstNodeS?: number
  perNodeS?: Stats
  /** Measured time when the fleet finished; else first node + (N-1) x median of the others. */
  fullFleetS: number
  extrapolated: boolean
  requests: { byAgent: Record<string, number>; perNode: number; byResource: Record<string, number> }
}

export function analyzeBaseline(
  lines: readonly Line[],
  startMs: number,
  endMs: number,
  fleetSize: number,
  events: readonly Ev[],
): BaselineAnalysis {
  const starts = new Map<string, number>()
  const durations: { node: string; s: number }[] = []
  for (const l of lines) {
    if (l.stream !== 'out') continue
    let m = /^Upgrading (\S+)\.\.\.$/.exec(l.text)
    if (m) {
      starts.set(m[1]!, l.t)
      continue
    }
    m = /^(\S+) upgraded successfully$/.exec(l.text)
    if (m && starts.has(m[1]!)) durations.push({ node: m[1]!, s: (l.t - starts.get(m[1]!)!) / 1000 })
  }
  const done = durations.length
  const first = durations[0]?.s
  const rest = stats(durations.slice(1).map((d) => d.s))
  const complete = done === fleetSize
  const fullFleetS = complete ? (endMs - startMs) / 1000 : (first ?? 0) + (fleetSize - 1) * (rest?.median ?? first ?? 0)
  const agent = (e: Ev) => (isHelm(e) ? 'helm' : e.ua.startsWith('kubectl/') ? 'kubectl' : 'other')
  const ours = events.filter((e) => isHelm(e) || e.ua.startsWith('kubectl/'))
  return {
    nodesDone: done,
    ...(first !== undefined ? { firstNodeS: round(first) } : {}),
    ...(rest ? { perNodeS: roundStats(rest) } : {}),
    fullFleetS: round(fullFleetS, 1),
    extrapolated: !complete,
    requests: {
      byAgent: countBy(ours, agent),
      perNode: done ? round(ours.length / done, 2) : 0,
      byResource: countBy(ours, (e) => `${agent(e)} ${resourceKey(e)}`),
    },
  }
}
