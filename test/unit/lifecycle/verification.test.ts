import { describe, expect, it } from 'vitest'
import { InputError } from '../../../src/lifecycle/errors.js'
import {
  checkSchedulable,
  describeStuckPod,
  judgeVerificationPod,
  parseVerificationTemplate,
  renderVerificationPod,
  VERIFICATION_LABEL,
  verificationPodName,
} from '../../../src/lifecycle/engine/verification.js'
import type { ContainerView, NodeView, PodView, Taint } from '../../../src/ports/cluster.port.js'
import { VERIFICATION_POD } from '../../fakes/scenario.js'
import { judgeKataDeployPods, REVISION_LABEL } from '../../../src/lifecycle/modes/kata-deploy-pods.js'

function pod(phase: string, containers: Partial<ContainerView>[] = [], extra: Partial<PodView> = {}): PodView {
  return {
    name: 'kata-verify-n1-r1',
    namespace: 'kv',
    uid: 'u',
    phase,
    labels: {},
    annotations: {},
    ready: false,
    ownerKinds: [],
    mirror: false,
    emptyDirs: [],
    conditions: [],
    containers: containers.map((c) => ({ name: 'verify', ready: false, restartCount: 0, state: 'unknown', ...c })),
    ...extra,
  }
}

function inputError(fn: () => unknown): InputError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(InputError)
    return error as InputError
  }
  throw new Error('expected an InputError')
}

const withSpec = (spec: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: \${TEST_POD}\nspec:\n${spec}`
const containers = '  containers:\n    - name: verify\n      image: busybox\n'

describe('parseVerificationTemplate', () => {
  it('accepts the design example', () => {
    expect(parseVerificationTemplate(VERIFICATION_POD, 'verify.yaml')).toEqual({
      source: VERIFICATION_POD,
      origin: 'verify.yaml',
    })
  })

  it.each([
    ['two documents', `${VERIFICATION_POD}---\n${VERIFICATION_POD}`, '--verification-pod', /2 YAML documents/],
    [
      'not a Pod',
      VERIFICATION_POD.replace('kind: Pod', 'kind: Job'),
      '--verification-pod kind',
      /v1\/Job.*give a v1 Pod/,
    ],
    [
      'wrong apiVersion',
      VERIFICATION_POD.replace('apiVersion: v1', 'apiVersion: apps/v1'),
      '--verification-pod kind',
      /apps\/v1\/Pod/,
    ],
    ['no ${NODE}', VERIFICATION_POD.replace('${NODE}', 'worker-1'), '--verification-pod', /never uses \$\{NODE\}/],
    [
      'restartPolicy Always',
      VERIFICATION_POD.replace('restartPolicy: Never', 'restartPolicy: Always'),
      '--verification-pod spec.restartPolicy',
      /"Always"; use Never/,
    ],
    [
      'restartPolicy OnFailure',
      VERIFICATION_POD.replace('restartPolicy: Never', 'restartPolicy: OnFailure'),
      '--verification-pod spec.restartPolicy',
      /OnFailure/,
    ],
    [
      'no containers',
      withSpec('  nodeName: ${NODE}\n  containers: []\n'),
      '--verification-pod spec.containers',
      /no containers/,
    ],
    ['containers missing', withSpec('  nodeName: ${NODE}\n'), '--verification-pod spec.containers', /no containers/],
    ['a YAML list', '- ${NODE}\n', '--verification-pod', /not a YAML mapping/],
    ['broken YAML', 'kind: Pod\nspec: [${NODE}\n', '--verification-pod', /not valid YAML/],
    [
      'an alias bomb',
      `${VERIFICATION_POD}x:\n  a: &a [x, x, x, x, x, x, x, x, x]\n${['b', 'c', 'd', 'e', 'f'].map((k, i) => `  ${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]\n`).join('')}`,
      '--verification-pod',
      /^--verification-pod: verify.yaml: its aliases expand too far/,
    ],
  ])('refuses %s, naming the field', (_what, source, field, message) => {
    const error = inputError(() => parseVerificationTemplate(source, 'verify.yaml'))
    expect(error.field).toBe(field)
    expect(error.message).toMatch(message)
  })

  it('accepts an unset restartPolicy', () => {
    expect(() => parseVerificationTemplate(withSpec(`  nodeName: \${NODE}\n${containers}`), 'v.yaml')).not.toThrow()
  })
})

describe('renderVerificationPod', () => {
  const source = `${VERIFICATION_POD.replace('command: ["uname", "-a"]', 'command: ["sh", "-c", "echo ${NODE} ${TEST_POD}"]')}`
  const template = parseVerificationTemplate(
    source.replace('metadata:\n', 'metadata:\n  namespace: elsewhere\n  labels:\n    team: kata\n'),
    'v.yaml',
  )
  const manifest = renderVerificationPod(template, 'worker-7', 'kata-verify-worker-7-abc', 'kata-verify') as {
    metadata: { name: string; namespace: string; labels: Record<string, string> }
    spec: { nodeSelector: Record<string, string>; containers: { command: string[] }[] }
  }

  it('substitutes ${NODE} and ${TEST_POD} everywhere', () => {
    expect(manifest.spec.nodeSelector).toEqual({ 'kubernetes.io/hostname': 'worker-7' })
    expect(manifest.spec.containers[0]!.command).toEqual(['sh', '-c', 'echo worker-7 kata-verify-worker-7-abc'])
  })

  it('owns name and namespace, keeps the user labels and adds the verification label', () => {
    expect(manifest.metadata.name).toBe('kata-verify-worker-7-abc')
    expect(manifest.metadata.namespace).toBe('kata-verify')
    expect(manifest.metadata.labels).toEqual({ team: 'kata', [VERIFICATION_LABEL]: 'worker-7' })
  })

  it('renders each node from the one parse, never sharing an object between nodes', () => {
    const other = renderVerificationPod(
      template,
      'worker-8',
      'kata-verify-worker-8-def',
      'kata-verify',
    ) as typeof manifest
    expect(other.spec.nodeSelector).toEqual({ 'kubernetes.io/hostname': 'worker-8' })
    expect(manifest.spec.nodeSelector).toEqual({ 'kubernetes.io/hostname': 'worker-7' })
    expect(other.spec).not.toBe(manifest.spec)
    // The same text checked again (a pool's pod, per node) renders the same from the one parse.
    const again = parseVerificationTemplate(template.source, template.origin)
    expect(renderVerificationPod(again, 'worker-7', 'kata-verify-worker-7-abc', 'kata-verify')).toEqual(manifest)
  })

  it('renders a placeholder in flow style, where ${NODE} is YAML syntax until filled in', () => {
    const flow = parseVerificationTemplate(
      [
        'apiVersion: v1',
        'kind: Pod',
        'metadata: {name: "${TEST_POD}"}',
        'spec:',
        '  nodeSelector: {kubernetes.io/hostname: ${NODE}}',
        '  tolerations: [{operator: Exists}]',
        '  restartPolicy: Never',
        '  containers: [{name: c, image: busybox, command: [sh, -c, "echo ${NODE}"]}]',
      ].join('\n'),
      'flow.yaml',
    )
    const pod = renderVerificationPod(flow, 'worker-9', 'kata-verify-worker-9-x', 'kata-verify') as typeof manifest
    expect(pod.spec.nodeSelector).toEqual({ 'kubernetes.io/hostname': 'worker-9' })
    expect(pod.spec.containers[0]!.command).toEqual(['sh', '-c', 'echo worker-9'])
  })

  it('fills a placeholder in as a string, whatever the node is called', () => {
    // A textual substitution made `kubernetes.io/hostname: 123` the number 123, which the API refuses.
    const named = renderVerificationPod(template, '123', 'kata-verify-123-abc', 'kata-verify') as typeof manifest
    expect(named.spec.nodeSelector).toEqual({ 'kubernetes.io/hostname': '123' })
    expect(named.metadata.labels[VERIFICATION_LABEL]).toBe('123')
  })
})

describe('checkSchedulable', () => {
  const node = (taints: Taint[] = []): NodeView => ({
    name: 'worker-1',
    uid: 'u',
    labels: {},
    annotations: {},
    taints,
    unschedulable: false,
  })
  const tpl = (spec: string) =>
    parseVerificationTemplate(withSpec(`  restartPolicy: Never\n${spec}${containers}`), 'v.yaml')
  const selector = '  nodeSelector:\n    kubernetes.io/hostname: ${NODE}\n'

  it('passes the design example on a tainted node (operator: Exists)', () => {
    expect(
      checkSchedulable(
        parseVerificationTemplate(VERIFICATION_POD, 'v'),
        node([{ key: 'gpu', value: 'x', effect: 'NoExecute' }]),
      ),
    ).toBeUndefined()
  })

  it('fails without a toleration for the cordon, naming spec.tolerations', () => {
    expect(checkSchedulable(tpl(selector), node())).toMatch(
      /^--verification-pod spec.tolerations: .*node.kubernetes.io\/unschedulable:NoSchedule on node worker-1/,
    )
  })

  it('fails when a node taint is not tolerated', () => {
    const t = tpl(`${selector}  tolerations:\n    - key: node.kubernetes.io/unschedulable\n      operator: Exists\n`)
    expect(checkSchedulable(t, node([{ key: 'dedicated', value: 'kata', effect: 'NoSchedule' }]))).toMatch(
      /does not tolerate dedicated=kata:NoSchedule/,
    )
  })

  it.each([
    ['Equal with matching value', '    - key: dedicated\n      value: kata\n      effect: NoSchedule\n', undefined],
    ['Equal with another value', '    - key: dedicated\n      value: other\n', /dedicated=kata/],
    ['Exists on the key', '    - key: dedicated\n      operator: Exists\n', undefined],
    ['another effect', '    - key: dedicated\n      operator: Exists\n      effect: NoExecute\n', /dedicated=kata/],
  ])('toleration %s', (_what, toleration, expected) => {
    const t = tpl(
      `${selector}  tolerations:\n    - key: node.kubernetes.io/unschedulable\n      operator: Exists\n${toleration}`,
    )
    const result = checkSchedulable(
      t,
      node([
        { key: 'dedicated', value: 'kata', effect: 'NoSchedule' },
        { key: 'soft', effect: 'PreferNoSchedule' },
      ]),
    )
    if (expected === undefined) expect(result).toBeUndefined()
    else expect(result).toMatch(expected)
  })

  it('spec.nodeName bypasses the scheduler: no cordon toleration needed', () => {
    expect(checkSchedulable(tpl('  nodeName: ${NODE}\n'), node())).toBeUndefined()
  })

  // BUG (src/lifecycle/engine/verification.ts checkSchedulable): a bound pod skips the scheduler, so only
  // NoExecute taints matter (the kubelet admits it despite NoSchedule ones). A node an operator
  // already cordoned carries node.kubernetes.io/unschedulable:NoSchedule in spec.taints, and the
  // check still demands a toleration for it, refusing the very case the nodeName bypass is for.
  it('spec.nodeName also bypasses NoSchedule taints already on the node (operator-cordoned node)', () => {
    const cordoned = {
      ...node([{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }]),
      unschedulable: true,
    }
    expect(checkSchedulable(tpl('  nodeName: ${NODE}\n'), cordoned)).toBeUndefined()
  })

  it('spec.nodeName still needs NoExecute taints tolerated', () => {
    expect(checkSchedulable(tpl('  nodeName: ${NODE}\n'), node([{ key: 'evict', effect: 'NoExecute' }]))).toMatch(
      /evict:NoExecute/,
    )
  })
})

describe('judgeVerificationPod', () => {
  it.each<[string, PodView | undefined, ReturnType<typeof judgeVerificationPod>]>([
    ['not seen yet', undefined, undefined],
    ['Pending', pod('Pending', [{ state: 'waiting', reason: 'ContainerCreating' }]), undefined],
    ['Running', pod('Running', [{ state: 'running' }]), undefined],
    ['Succeeded', pod('Succeeded', [{ state: 'terminated', exitCode: 0 }]), { passed: true }],
    [
      'Failed',
      pod('Failed', [{ state: 'terminated', exitCode: 1, reason: 'Error' }]),
      { passed: false, reason: 'verification pod kata-verify-n1-r1 failed: container verify exited 1 (Error)' },
    ],
    [
      'Failed without statuses',
      pod('Failed'),
      { passed: false, reason: 'verification pod kata-verify-n1-r1 failed: pod Failed' },
    ],
    [
      'non-zero exit before the phase update',
      pod('Running', [{ state: 'terminated', exitCode: 2 }]),
      { passed: false, reason: 'verification pod kata-verify-n1-r1 failed: container verify exited 2' },
    ],
    ['exit 0 while still Running', pod('Running', [{ state: 'terminated', exitCode: 0 }]), undefined],
    [
      'CrashLoopBackOff',
      pod('Running', [{ state: 'waiting', reason: 'CrashLoopBackOff', message: 'back-off 40s' }]),
      {
        passed: false,
        reason: 'verification pod kata-verify-n1-r1 cannot start: container verify CrashLoopBackOff: back-off 40s',
      },
    ],
    [
      'InvalidImageName',
      pod('Pending', [{ state: 'waiting', reason: 'InvalidImageName' }]),
      { passed: false, reason: 'verification pod kata-verify-n1-r1 cannot start: container verify InvalidImageName' },
    ],
    ['ImagePullBackOff keeps watching', pod('Pending', [{ state: 'waiting', reason: 'ImagePullBackOff' }]), undefined],
  ])('%s', (_what, input, expected) => {
    expect(judgeVerificationPod(input)).toEqual(expected)
  })
})

describe('a container waiting for good: one judgement for verification pods and kata-deploy pods', () => {
  const stuck = (reason: string) =>
    pod('Pending', [{ state: 'waiting', reason }], { nodeName: 'n1', labels: { [REVISION_LABEL]: 'r2' } })
  it.each([
    ['InvalidImageName', true],
    ['ErrImageNeverPull', true],
    ['CreateContainerConfigError', true],
    ['CreateContainerError', true],
    ['RunContainerError', true],
    ['CrashLoopBackOff', true],
    ['ImagePullBackOff', false],
    ['ContainerCreating', false],
  ])('%s: fails at once %s, in both', (reason, fails) => {
    expect(judgeVerificationPod(stuck(reason))?.passed === false).toBe(fails)
    expect(judgeKataDeployPods([stuck(reason)], 'n1', 'r2')?.ok === false).toBe(fails)
  })
})

describe('describeStuckPod', () => {
  it.each<[string, PodView | undefined, string]>([
    ['never seen', undefined, 'the pod was never seen'],
    [
      'unschedulable',
      pod('Pending', [], {
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' },
        ],
      }),
      'stuck Pending: Unschedulable: 0/3 nodes are available',
    ],
    [
      'container waiting',
      pod('Pending', [{ state: 'waiting', reason: 'ContainerCreating' }]),
      'stuck Pending: container verify waiting (ContainerCreating)',
    ],
    ['running', pod('Running', [{ state: 'running' }]), 'still Running'],
  ])('%s', (_what, input, text) => {
    expect(describeStuckPod(input)).toBe(text)
  })
})

describe('verificationPodName', () => {
  it.each([
    ['worker-1', 'abc12', 'kata-verify-worker-1-abc12'],
    ['Worker_1.example.com', 'x', 'kata-verify-worker-1-example-com-x'],
    ['n'.repeat(80), 'x', `kata-verify-${'n'.repeat(38)}-x`],
  ])('%s', (node, suffix, name) => {
    expect(verificationPodName(node, suffix)).toBe(name)
    expect(name.length).toBeLessThanOrEqual(63)
  })
})
