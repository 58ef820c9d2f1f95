// Markdown rendering of the benchmark results (bench/results/<stamp>.md and latest.md).
import type { KataLcmRun, Results } from '../bench.js'

/**
 * The bench's control plane only: kube-controller-manager's own client (20 requests/s, burst 30 by
 * default) and its 2 DaemonSet / 5 Job sync workers would otherwise be the floor of every wave, not
 * kata-lcm. The floor left is the API server's and kwok's (docs/performance.md).
 */
export const BENCH_CONTROL_PLANE = [
  'kube-controller-manager=kube-api-qps=200',
  'kube-controller-manager=kube-api-burst=400',
  'kube-controller-manager=concurrent-daemonset-syncs=10',
  'kube-controller-manager=concurrent-job-syncs=20',
]

const f = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d))

function topResources(byResource: Record<string, number>, n: number, max = 6): string {
  return Object.entries(byResource)
    .slice(0, max)
    .map(([k, v]) => `${k} ${(v / n).toFixed(2)}`)
    .join('; ')
}

function runRow(r: KataLcmRun): string {
  const a = r.analysis
  const helmUpgrade = a.helm.byCommand.upgrade
  return [
    r.n,
    `kata-lcm b=${r.batch}${r.nodeOptions ? ` NODE_OPTIONS="${r.nodeOptions}"` : ''}${r.cliFlags ? ` ${r.cliFlags.join(' ')}` : ''}`,
    r.waves,
    f(r.wallS),
    a.floorS > 0 ? `${f(a.floorS)} (${(r.wallS / a.floorS).toFixed(2)})` : '-',
    f(a.waveDurS?.median, 2),
    `${f(a.waveDurS?.min, 2)}–${f(a.waveDurS?.max, 2)}`,
    f(a.overheadS?.median, 2),
    f(a.overheadS?.max, 2),
    `${f(a.helm.totalS)} (${a.helm.calls}; upgrades ${f(helmUpgrade?.totalS)})`,
    a.requests.kataLcm.total,
    f(a.requests.kataLcm.perNode, 1),
    a.requests.helm.total,
    f(r.peakRssMb, 0),
    `${f(a.reaction.toFirstActionS?.median, 3)} / ${f(a.reaction.toFirstActionS?.max, 3)}`,
    `${f(a.reaction.toNodePatchS?.median, 2)} / ${f(a.reaction.toNodePatchS?.max, 2)}`,
    `exit ${r.exitCode}${r.outcome ? ` (${r.outcome})` : ''}; ${r.endState.onTarget}/${r.n} on target${r.budgetS ? ` (stopped by the ${r.budgetS} s run budget after ${r.analysis.nodesProcessed} nodes; requests per processed node)` : ''}`,
  ].join(' | ')
}

export function renderMarkdown(res: Results): string {
  const m = res.machine
  const out: string[] = []
  out.push(`# kata-lcm benchmark ${res.startedAt}`, '')
  out.push(`Command: \`${res.command}\`  `)
  if (res.source) out.push(`CLI under test: ${res.source}  `)
  out.push(
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memGiB} GiB RAM (${m.freeGiBAtStart} GiB free at start); Node ${m.node}; Kubernetes ${m.kube}, kwok ${m.kwok}, helm ${m.helm}.  `,
  )
  out.push(
    `Fixture release kata-deploy ${'3.27.0'} → 3.28.0, daemonset mode; verification pod succeeds ~1 s after Running (kwok stage).`,
    `Control plane (bench clusters only): ${BENCH_CONTROL_PLANE.map((a) => `${a.split('=')[0]} --${a.split('=').slice(1).join(' ')}`).join(', ')}.`,
    '',
  )
  if (res.coldStart) {
    const c = res.coldStart
    out.push(
      `Cold start \`${c.command}\` (${c.tool}, ${c.runs} runs): median **${c.medianMs} ms** (mean ${c.meanMs}, min ${c.minMs}, max ${c.maxMs})${c.nodeBareMedianMs !== undefined ? `; bare \`node -e 0\`: ${c.nodeBareMedianMs} ms` : ''}.`,
      '',
    )
  }
  out.push('## Runs', '')
  out.push(
    '| N | tool | waves | wall s | floor s (CLI floor ratio) | wave median s | wave min–max s | overhead/wave median s | overhead/wave max s | helm s (calls; upgrades s) | kata-lcm requests | per node | helm requests | peak RSS MB | reaction to 1st action median/max s | reaction to node patch median/max s | result |',
  )
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const s of res.sizes) {
    for (const r of s.runs) out.push(`| ${runRow(r)} |`)
    if (s.vfail) out.push(`| ${runRow(s.vfail)} (vfail run: 4 pass + vfail-bv-5) |`)
    const b = s.baseline
    if (b) {
      const a = b.analysis
      const best = s.runs.reduce<KataLcmRun | undefined>((x, r) => (!x || r.wallS < x.wallS ? r : x), undefined)
      const one = s.runs.find((r) => r.batch === 1)
      const ratio = [
        one ? `${(a.fullFleetS / one.wallS).toFixed(1)}× vs b=1` : '',
        best ? `${(a.fullFleetS / best.wallS).toFixed(1)}× vs b=${best.batch}` : '',
      ]
        .filter(Boolean)
        .join(', ')
      out.push(
        `| ${s.n} | design script | ${a.nodesDone} nodes | ${f(b.wallS)}${b.budgetHit ? ' (budget)' : ''} | node: ${f(a.perNodeS?.median, 2)} (1st ${f(a.firstNodeS, 1)}) | ${f(a.perNodeS?.min, 2)}–${f(a.perNodeS?.max, 2)} | - | - | - | kubectl ${a.requests.byAgent.kubectl ?? 0} | ${f(a.requests.perNode, 1)} (kubectl+helm) | ${a.requests.byAgent.helm ?? 0} | - | - | - | full fleet ${a.extrapolated ? '≈' : ''}${f(a.fullFleetS, 0)} s${a.extrapolated ? ' (extrapolated)' : ''}; ratio ${ratio} |`,
      )
    }
  }
  out.push('')
  out.push(
    "Columns: *floor* = the sum over waves of the union of their pod work and helm calls (the wave's time minus its overhead), the waves' time at zero orchestration cost; *CLI floor ratio* = wall / floor; *wave* = `wave i/n` → `wave i done` progress lines; *overhead* = wave time not covered by any of: the helm calls in the wave, kata-deploy pod replacement (first pod delete by kata-lcm → last replacement made Ready by kwok), verification pods (first create → last final phase written by kwok) (they overlap: a node verifies while the wave's others still roll); *requests* = audit-log events of the run window by user agent `kata-lcm/` (and `Helm/` for helm); *reaction* = from kwok's status write that set the verification pod's final phase (its completion time) to kata-lcm's next request on that pod (1st action) and its next patch of that node (`completed`, or `rolling-back` for a failure).",
    '',
  )

  for (const s of res.sizes) {
    out.push(`## N = ${s.n}`, '')
    out.push(
      `Cluster created in ${f(s.clusterCreateS)} s; ${s.n} nodes created and Ready in ${f(s.fleetCreateS)} s; audit log ${s.auditMB} MB at the end.`,
      '',
    )
    for (const r of [...s.runs, ...(s.vfail ? [s.vfail] : [])]) {
      const a = r.analysis
      out.push(
        `### kata-lcm batch ${r.batch}${r === s.vfail ? ' (vfail)' : ''}: ${r.waves} waves, ${f(r.wallS)} s, exit ${r.exitCode}`,
        '',
      )
      out.push(
        `- fresh release ${r.namespace}: install + ${r.n} pods Ready in ${f(r.resetS)} s; load average before: ${r.loadavgBefore.join(' ')}`,
      )
      const waveSum = a.waves.reduce((x, w) => x + w.durS, 0)
      out.push(
        `- waves sum ${f(waveSum)} s; outside waves (start, checks, lock, finalize, exit) ${f(r.wallS - waveSum)} s`,
        `- the test bed's floor (the waves' union of pod work and helm calls): ${f(a.floorS)} s; CLI floor ratio: ${a.floorS > 0 ? (r.wallS / a.floorS).toFixed(2) : '-'} (wall / floor)`,
      )
      const phaseTotals: Record<string, number> = {}
      for (const w of a.waves)
        for (const [p, v] of Object.entries(w.phasesS)) phaseTotals[p] = (phaseTotals[p] ?? 0) + v
      out.push(
        `- phase time, mean per wave: ${Object.entries(phaseTotals)
          .map(([p, v]) => `${p} ${f(v / Math.max(1, a.waves.length), 2)} s`)
          .join(', ')}`,
      )
      const ds = a.waves.map((w) => w.daemonSetPodsS).filter((x): x is number => x !== undefined)
      const vp = a.waves.map((w) => w.verificationPodsS).filter((x): x is number => x !== undefined)
      out.push(
        `- per wave, mean: kata-deploy pod replacement ${f(ds.reduce((x, y) => x + y, 0) / Math.max(1, ds.length), 2)} s, verification pods ${f(vp.reduce((x, y) => x + y, 0) / Math.max(1, vp.length), 2)} s, helm ${f(a.waves.reduce((x, w) => x + w.helmS, 0) / Math.max(1, a.waves.length), 2)} s, overhead ${f(a.overheadS?.mean, 2)} s`,
      )
      out.push(
        `- helm: ${Object.entries(a.helm.byCommand)
          .map(([k, v]) => `${k} ×${v.calls} ${f(v.totalS, 2)} s`)
          .join(', ')}`,
      )
      const processed = a.nodesProcessed || r.n
      const attributable =
        processed === r.n
          ? `attributable to one node: median ${f(a.requests.kataLcm.attributablePerNode?.median, 0)}, max ${f(a.requests.kataLcm.attributablePerNode?.max, 0)}; `
          : ''
      out.push(
        `- kata-lcm requests: ${a.requests.kataLcm.total} (${f(a.requests.kataLcm.perNode, 2)}/node${processed !== r.n ? ` of the ${processed} processed` : ''}); by verb ${JSON.stringify(a.requests.kataLcm.byVerb)}; ${attributable}not attributable to one node (events, per-wave lists/watches, run-level) ${a.requests.kataLcm.unattributed}`,
      )
      out.push(
        `- per ${processed !== r.n ? 'processed ' : ''}node by request kind: ${topResources(a.requests.kataLcm.byResource, processed, 10)}`,
      )
      out.push(`- helm requests: ${a.requests.helm.total}; by verb ${JSON.stringify(a.requests.helm.byVerb)}`)
      if (a.reaction.pods)
        out.push(
          `- reaction over ${a.reaction.pods} verification pods: to first action median ${f(a.reaction.toFirstActionS?.median, 3)} s (p95 ${f(a.reaction.toFirstActionS?.p95, 3)}, max ${f(a.reaction.toFirstActionS?.max, 3)}); to node patch median ${f(a.reaction.toNodePatchS?.median, 3)} s (p95 ${f(a.reaction.toNodePatchS?.p95, 3)}, max ${f(a.reaction.toNodePatchS?.max, 3)})`,
        )
      const fr = a.reaction.failed
      if (fr)
        out.push(
          `- failed verification (vfail-* node, ${fr.pods} pod): Failed written -> kata-lcm's first request on the pod ${f(fr.toFirstActionS?.max, 3)} s, -> node patch \`rolling-back\` ${f(fr.toNodePatchS?.max, 3)} s`,
        )
      const lat = Object.entries(a.latencyMs)
        .slice(0, 6)
        .map(([k, v]) => `${k} ${f(v.median, 0)}/${f(v.p95, 0)}`)
        .join('; ')
      if (lat) out.push(`- API server latency of kata-lcm's requests, median/p95 ms: ${lat}`)
      out.push(
        `- end state: ${r.endState.completed} completed, ${r.endState.onTarget} on 3.28.0, ${r.endState.cordoned} cordoned; peak RSS ${f(r.peakRssMb, 0)} MB${r.cpuS !== undefined ? `; kata-lcm CPU ${f(r.cpuS, 1)} s (user+sys, its own process)` : ''}`,
        ...(r.leasesLost
          ? [
              r.leasesLost.length === 0
                ? '- control plane: kube-controller-manager and kube-scheduler kept their leases (the same holder, no transition, from before the run to after it)'
                : `- control plane: LEASE LOST during the run by ${r.leasesLost.join(', ')} (another holder or a transition after it)`,
            ]
          : []),
        '',
      )
    }
    if (s.argoRuns?.length) {
      out.push(
        '### Argo: deploy-version through the real workflow-controller, beside the CLI on the same fleet',
        '',
        "| batch | workflow | Argo wall s | CLI wall s | Argo / CLI wall | waves median s | step pods | pod life mean s | kata-lcm per step median / mean s | of it, before / in the wave's handlers median s | step peak RSS median / max MB | between pods s | kata-lcm requests per node | requests by agent | workflow kB | end state |",
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      )
      for (const r of s.argoRuns) {
        const a = r.analysis
        const cli = s.runs.find((x) => x.batch === r.batch)
        const waves = [...a.waveS].sort((x, y) => x - y)
        out.push(
          [
            '',
            r.batch,
            `${a.phase}${shapeOf(r)}`,
            f(a.wallS),
            cli ? f(cli.wallS) : '-',
            cli ? (a.wallS / cli.wallS).toFixed(2) : '-',
            f(waves[Math.floor(waves.length / 2)], 1),
            a.stepPods,
            f(a.podLifeMeanS, 2),
            `${f(a.kataLcmStepMedianS, 2)} / ${f(a.kataLcmStepMeanS, 2)}`,
            `${f(a.kataLcmBeforeMedianS, 2)} / ${f(a.kataLcmHandlersMedianS, 2)}`,
            a.stepPeakRssMaxMb ? `${f(a.stepPeakRssMedianMb, 0)} / ${f(a.stepPeakRssMaxMb, 0)}` : '-',
            f(a.betweenPodsS, 1),
            f(r.kataLcmPerNode, 1),
            Object.entries(r.requestsBy)
              .sort((x, y) => y[1] - x[1])
              .slice(0, 4)
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
            f(a.workflowKB, 1),
            `${r.endState.completed} completed, ${r.endState.onTarget} on 3.28.0, ${r.endState.cordoned} cordoned`,
            '',
          ]
            .join(' | ')
            .trim(),
        )
      }
      out.push(
        '',
        "Argo wall = the Workflow's start to finish; kata-lcm per step = its main container's run in a step pod; between pods = the sum of the gaps from one step pod's end to the next one's start (the controller's share, with the next pod's scheduling); requests by agent = the audit log of the run window, by user agent.",
        '',
      )
    }
    if (s.baseline) {
      const b = s.baseline
      out.push(
        `### design script: ${b.analysis.nodesDone}/${s.n} nodes in ${f(b.wallS)} s${b.budgetHit ? ` (stopped at the ${b.budgetS} s budget)` : ''}`,
        '',
      )
      out.push(
        `- first node ${f(b.analysis.firstNodeS, 2)} s (its helm upgrade --wait rolls every kata-deploy pod, RollingUpdate maxUnavailable 1); then per node median ${f(b.analysis.perNodeS?.median, 2)} s (min ${f(b.analysis.perNodeS?.min, 2)}, max ${f(b.analysis.perNodeS?.max, 2)})`,
      )
      out.push(
        `- full fleet ${b.analysis.extrapolated ? '(extrapolated: first + (N−1) × median) ' : ''}${f(b.analysis.fullFleetS, 0)} s`,
      )
      out.push(
        `- requests: ${JSON.stringify(b.analysis.requests.byAgent)} (${f(b.analysis.requests.perNode, 1)} per node)`,
        '',
      )
    }
    if (s.errors.length) out.push('Errors:', ...s.errors.map((e) => `- ${e.split('\n')[0]}`), '')
  }
  return out.join('\n') + '\n'
}

/** The workflow's shape as the chart was installed: the pods per wave, or waves per pod, overlapping. */
function shapeOf(r: { onePodPerWave: boolean; overlapWaves?: boolean; wavesPerPod?: number }): string {
  if (!r.onePodPerWave) return ''
  const pods = (r.wavesPerPod ?? 1) > 1 ? `${r.wavesPerPod} waves per pod` : 'one pod per wave'
  return ` (${pods}${r.overlapWaves ? ', overlapping' : ''})`
}
