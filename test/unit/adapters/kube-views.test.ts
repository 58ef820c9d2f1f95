import { describe, expect, it } from 'vitest'
import { toJobView, toPodView } from '../../../src/adapters/kube-views.js'

describe('kube views', () => {
  it('maps a pod: Ready condition, container states, mirror, owners, Date or string timestamps', () => {
    const view = toPodView({
      metadata: {
        name: 'p',
        namespace: 'ns',
        uid: 'u',
        annotations: { 'kubernetes.io/config.mirror': 'abc' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n', uid: 'x' }],
        deletionTimestamp: '2025-01-01T00:00:00Z' as unknown as Date,
      },
      spec: { nodeName: 'n', containers: [{ name: 'a' }, { name: 'b' }, { name: 'c', image: 'img:c' }] },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
        initContainerStatuses: [
          {
            name: 'init',
            ready: false,
            restartCount: 0,
            image: 'i',
            imageID: '',
            state: { terminated: { exitCode: 0 } },
          },
        ],
        containerStatuses: [
          {
            name: 'a',
            ready: false,
            restartCount: 5,
            image: 'img:a',
            imageID: '',
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off' } },
          },
          {
            name: 'b',
            ready: false,
            restartCount: 0,
            image: 'img:b',
            imageID: '',
            state: { terminated: { exitCode: 1, reason: 'Error' } },
          },
        ],
      },
    })
    expect(view).toMatchObject({
      name: 'p',
      nodeName: 'n',
      phase: 'Running',
      ready: false,
      mirror: true,
      ownerKinds: ['Node'],
      deletionTimestamp: '2025-01-01T00:00:00Z',
    })
    expect(view.containers).toEqual([
      {
        name: 'a',
        ready: false,
        restartCount: 5,
        image: 'img:a',
        state: 'waiting',
        reason: 'CrashLoopBackOff',
        message: 'back-off',
      },
      {
        name: 'b',
        ready: false,
        restartCount: 0,
        image: 'img:b',
        state: 'terminated',
        reason: 'Error',
        message: undefined,
        exitCode: 1,
      },
      { name: 'c', ready: false, restartCount: 0, image: 'img:c', state: 'unknown' },
    ])
  })

  it('decides a Job from Complete/Failed or their early forms', () => {
    const job = (type: string, status = 'True') =>
      toJobView({
        metadata: { name: 'j', creationTimestamp: new Date('2025-01-01T00:00:00Z') },
        spec: {
          template: {
            spec: { nodeSelector: { 'kubernetes.io/hostname': 'n1' }, containers: [{ name: 'c', image: 'i' }] },
          },
        },
        status: { conditions: [{ type, status, reason: 'R', message: 'm' }] },
      })
    expect(job('Complete').outcome).toBe('Complete')
    expect(job('SuccessCriteriaMet').outcome).toBe('Complete')
    expect(job('Failed').outcome).toBe('Failed')
    expect(job('FailureTarget').message).toBe('R: m')
    expect(job('Failed', 'False').outcome).toBe('Running')
    expect(job('Complete')).toMatchObject({
      targetNode: 'n1',
      images: ['i'],
      creationTimestamp: '2025-01-01T00:00:00.000Z',
    })
  })
})
