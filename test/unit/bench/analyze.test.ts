import { describe, expect, it } from 'vitest'
import { unionMs } from '../../../bench/lib/analyze.js'

describe('bench overhead: the union of the busy spans', () => {
  it('counts overlapping spans once, clips them to the wave and skips those outside it', () => {
    // helm 0-10, pod replacement 5-30, verification 20-40, another helm call 50-60; wave 0-45.
    expect(
      unionMs(
        [
          [0, 10],
          [5, 30],
          [20, 40],
          [50, 60],
        ],
        [0, 45],
      ),
    ).toBe(40)
    expect(
      unionMs(
        [
          [10, 20],
          [30, 35],
        ],
        [0, 100],
      ),
    ).toBe(15)
    expect(unionMs([], [0, 100])).toBe(0)
    expect(
      unionMs(
        [
          [-5, 5],
          [8, 8],
        ],
        [0, 100],
      ),
    ).toBe(5)
  })
})

describe('bench: a deploy-version workflow analysed', () => {
  it('wall, waves, step pods, their life, kata-lcm per step (its split before and in the handlers, its peak memory), and the gaps between pods', async () => {
    const { analyzeWorkflow } = await import('../../../bench/lib/argo.js')
    const at = (s: number) => new Date(Date.UTC(2026, 11, 5, 8, 0, s)).toISOString()
    const pod = (a: number, b: number) => ({ type: 'Pod', startedAt: at(a), finishedAt: at(b) })
    // A wave step's outputs: its time before and in the wave's handlers, ms, and its peak memory, MB.
    const timing = (before: number, handlers: number, rss: number) => ({
      parameters: [
        { name: 'completed', value: '2' },
        { name: 'before-ms', value: String(before) },
        { name: 'handlers-ms', value: String(handlers) },
        { name: 'peak-rss-mb', value: String(rss) },
      ],
    })
    const wf = {
      status: {
        phase: 'Succeeded',
        startedAt: at(0),
        finishedAt: at(40),
        nodes: {
          plan: pod(1, 9),
          w1: { type: 'Steps', templateName: 'run-wave', startedAt: at(10), finishedAt: at(30) },
          prepare: { ...pod(11, 19), templateName: 'wave-phase', outputs: timing(900, 400, 120) },
          upgrade: { ...pod(21, 29), templateName: 'wave-phase', outputs: timing(1100, 2600, 140) },
          finalize: pod(31, 39),
        },
      },
    }
    const steps = [
      { nodeName: 'a', mainStartedAt: at(2), mainFinishedAt: at(5) },
      { nodeName: 'b', mainStartedAt: at(12), mainFinishedAt: at(13) },
      { nodeName: 'c', mainStartedAt: at(22), mainFinishedAt: at(24) },
      { nodeName: 'd' },
    ]
    expect(analyzeWorkflow(wf, steps)).toMatchObject({
      phase: 'Succeeded',
      wallS: 40,
      waveS: [20],
      stepPods: 4,
      podLifeMeanS: 8,
      kataLcmStepMedianS: 2,
      kataLcmStepMeanS: 2,
      kataLcmBeforeMedianS: 1,
      kataLcmHandlersMedianS: 1.5,
      stepPeakRssMedianMb: 130,
      stepPeakRssMaxMb: 140,
      betweenPodsS: 6,
    })
  })
})

describe("bench: the control plane's leases over a run", () => {
  it('a lease that changed hands (another holder, or a transition) is lost; the same holder and count is kept', async () => {
    const { leasesLost } = await import('../../../bench/lib/kube.js')
    const before = {
      'kube-controller-manager': { holder: 'cm_1', transitions: 0 },
      'kube-scheduler': { holder: 'sched_1', transitions: 0 },
    }
    expect(leasesLost(before, structuredClone(before))).toEqual([])
    expect(leasesLost(before, { ...before, 'kube-scheduler': { holder: 'sched_2', transitions: 1 } })).toEqual([
      'kube-scheduler',
    ])
    expect(leasesLost(before, { ...before, 'kube-controller-manager': { holder: 'cm_1', transitions: 1 } })).toEqual([
      'kube-controller-manager',
    ])
  })
})
