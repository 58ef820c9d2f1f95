import { describe, expect, it } from 'vitest'
import { ClusterError, ExitCode, InputError, KataLcmError, PreconditionError } from '../../../src/lifecycle/errors.js'
import { parsePolicy, policyFlags, withPolicy, chartDefaults } from '../../../src/lifecycle/policy/policy.js'
import {
  findPolicy,
  kataFamilies,
  missingVerificationPod,
  starterFiles,
} from '../../../src/lifecycle/services/policy.service.js'
import { parseVerificationTemplate } from '../../../src/lifecycle/engine/verification.js'
import { rollbackNode } from '../../../src/lifecycle/services/rollback.service.js'
import { planStep } from '../../../src/lifecycle/services/steps.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { formatLifecycleReport } from '../../../src/ui/report-format.js'
import { scenario } from '../../fakes/scenario.js'
import { FakeCluster } from '../../fakes/fake-cluster.js'
import { FakeClock } from '../../fakes/fake-clock.js'

const POLICY = `apiVersion: kata-lcm.katacontainers.io/v1alpha1
kind: Policy
release: { name: kd, namespace: kata-system }
nodeSelector: pool=kata
batchSize: 2
timeouts: { ready: 2m }
verification:
  pod:
    apiVersion: v1
    kind: Pod
    metadata: { name: "\${TEST_POD}" }
    spec: { containers: [{ name: v, image: busybox }] }
`

describe('the fleet policy', () => {
  it('parses, and fills the flags the command line did not give', () => {
    const policy = parsePolicy(POLICY, 'policy file p.yaml')
    expect(policyFlags(policy)).toEqual({
      'helm-release': 'kd',
      'helm-namespace': 'kata-system',
      'node-selector': 'pool=kata',
      'batch-size': 2,
      'ready-timeout': '2m',
    })
    const { flags, origins } = withPolicy(
      { 'batch-size': 5, 'ready-timeout': '5m', 'helm-release': 'kata-deploy' },
      {
        given: new Set(['batch-size']),
        defined: new Set(['batch-size', 'ready-timeout', 'helm-release', 'node-selector']),
      },
      { policy, origin: 'policy file p.yaml' },
    )
    // The flag given wins; the policy fills the rest (node-selector too, though unset and default-less).
    expect(flags).toEqual({
      'batch-size': 5,
      'ready-timeout': '2m',
      'helm-release': 'kd',
      'node-selector': 'pool=kata',
    })
    expect(origins['ready-timeout']).toBe('policy file p.yaml: timeouts.ready')
    // timeouts.ready too: the template takes every setting the policy has (the settings table).
    expect(chartDefaults(policy)).toEqual({
      helmRelease: 'kd',
      helmNamespace: 'kata-system',
      nodeSelector: 'pool=kata',
      batchSize: 2,
      readyTimeout: '2m',
    })
  })

  it("renders the pools and the cap into the template's defaults (pools as the plan step's --pools YAML)", () => {
    const policy = parsePolicy(
      'apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\nmaxUnavailable: 3\npools:\n  - name: gpu\n    nodeSelector: pool=gpu\n  - name: rest\n',
      'p',
    )
    expect(chartDefaults(policy)).toEqual({
      maxUnavailable: 3,
      pools: '- name: gpu\n  nodeSelector: pool=gpu\n- name: rest\n',
    })
  })

  it.each([
    ['batchSize: two', /policy file p.yaml: batchSize: "two" does not match/],
    ['batchSize: 150%', /policy file p.yaml: batchSize: "150%" does not match/],
    ['canary: 0', /canary: must be at least 1, not 0/],
    ['batchSize: 0', /batchSize: must be at least 1, not 0/],
    ['deploymentMode: helm', /deploymentMode: "helm" is not one of "auto", "daemonset", "job"/],
    ['timeouts: { ready: soon }', /timeouts.ready: "soon" does not match/],
    ['drain: { enable: true }', /drain.enable: unknown field; known: enabled, timeout, force, deleteEmptyDirData/],
    ['nodeTaint: { value: x }', /nodeTaint.key: is required/],
    [
      'verification: { pod: { apiVersion: v1, kind: Deployment, spec: {} } }',
      /verification.pod.kind: "Deployment" is not one of "Pod"/,
    ],
    ['release: { name: Kata_Deploy }', /release.name: "Kata_Deploy" does not match/],
    ['pools: []', /pools: must hold at least 1 item/],
    ['pools: [{ nodeSelector: a=b }]', /pools\[0\].name: is required/],
    ['pools: [{ name: gpu, canary: 0 }]', /pools\[0\].canary: must be at least 1, not 0/],
    ['maxUnavailable: 0', /maxUnavailable: must be at least 1, not 0/],
  ])('refuses %s, naming the field', (line, message) => {
    const text = `apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\n${line}\n`
    expect(() => parsePolicy(text, 'policy file p.yaml')).toThrow(message)
  })

  it('refuses an alias bomb as bad input naming the source, not a crash', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]']
    for (const [i, k] of ['b', 'c', 'd', 'e', 'f'].entries())
      bomb.push(`${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]`)
    const text = `apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\nx: {${bomb.join(', ')}}\n`
    expect(() => parsePolicy(text, 'policy file p.yaml')).toThrow(InputError)
    expect(() => parsePolicy(text, 'policy file p.yaml')).toThrow(/^policy file p.yaml: its aliases expand too far/)
  })

  it('refuses a document that is not one policy', () => {
    expect(() => parsePolicy('kind: Policy\n', 'p')).toThrow(/p: apiVersion: is required/)
    expect(() => parsePolicy('a: 1\n---\nb: 2\n', 'p')).toThrow(/exactly one YAML document/)
    expect(() => parsePolicy('[1, 2]', 'p')).toThrow(/must be a mapping, not array/)
  })

  it('looks at --policy FILE, else the cluster, where only an absent ConfigMap means none; names the policy in effect', async () => {
    const cluster = new FakeCluster(new FakeClock())
    const none = await findPolicy(() => cluster, { namespace: 'kube-system' })
    expect(none.looked).toEqual(['ConfigMap kube-system/kata-lcm-policy (none)'])
    expect(none.inEffect).toEqual({ name: 'none (no ConfigMap kube-system/kata-lcm-policy)', namespace: 'kube-system' })
    expect(missingVerificationPod(none.looked).message).toMatch(
      /^--verification-pod: no verification pod: looked at the flag \(not given\), ConfigMap kube-system\/kata-lcm-policy \(none\);/,
    )
    cluster.policies.set('kube-system', POLICY)
    const found = await findPolicy(() => cluster, { namespace: 'kube-system' })
    expect(found.source?.origin).toBe('policy ConfigMap kube-system/kata-lcm-policy')
    expect(found.inEffect).toEqual({ name: 'ConfigMap kube-system/kata-lcm-policy', namespace: 'kube-system' })
    const file = await findPolicy(() => cluster, { namespace: 'kube-system', file: { path: 'p.yaml', text: POLICY } })
    expect(file.inEffect).toEqual({ name: 'file p.yaml' })
  })

  it('--no-policy: none, and the cluster is not even asked', async () => {
    const cluster = new FakeCluster(new FakeClock())
    cluster.policies.set('kube-system', POLICY)
    const off = await findPolicy(() => cluster, { namespace: 'kube-system', off: true })
    expect(off).toEqual({ inEffect: { name: 'none (--no-policy)' }, looked: ['no policy (--no-policy)'] })
    expect(cluster.reads).toEqual([])
  })

  it('a policy ConfigMap this identity may not read (403) refuses the run, exit 2, naming the ConfigMap, the error and --no-policy', async () => {
    const cluster = new FakeCluster(new FakeClock())
    cluster.policyReadError = new ClusterError(
      'get configmap kube-system/kata-lcm-policy failed: HTTP 403: configmaps "kata-lcm-policy" is forbidden',
      403,
      { suggestions: ['RBAC must allow verb "get" on "configmaps" in namespace kube-system for this identity'] },
    )
    const error = await findPolicy(() => cluster, { namespace: 'kube-system' }).then(
      () => undefined,
      (e: unknown) => e as KataLcmError,
    )
    expect(error).toBeInstanceOf(PreconditionError)
    expect(error?.exitCode).toBe(ExitCode.BadInput)
    expect(error?.message).toBe(
      'cannot read the fleet policy, ConfigMap kube-system/kata-lcm-policy: get configmap kube-system/kata-lcm-policy failed: HTTP 403: configmaps "kata-lcm-policy" is forbidden; a run does not go on without the fleet\'s policy',
    )
    expect(error?.suggestions).toEqual([
      'RBAC must allow verb "get" on "configmaps" in namespace kube-system for this identity',
      'to run on the flags and built-in defaults alone, give --no-policy; to use a policy file instead, --policy FILE',
    ])
  })

  it.each([
    [
      'a 500',
      new ClusterError('get configmap kube-system/kata-lcm-policy failed: HTTP 500: etcdserver: leader changed', 500),
    ],
    [
      'an unreachable API server',
      new ClusterError(
        'get configmap kube-system/kata-lcm-policy failed: fetch failed: connect ECONNREFUSED 127.0.0.1:6443',
      ),
    ],
  ])(
    '%s on the policy ConfigMap refuses the run with the cluster error (exit 7), never "no policy"',
    async (_name, cause) => {
      const cluster = new FakeCluster(new FakeClock())
      cluster.policyReadError = cause
      const error = await findPolicy(() => cluster, { namespace: 'kube-system' }).then(
        () => undefined,
        (e: unknown) => e as KataLcmError,
      )
      expect(error).toBeInstanceOf(ClusterError)
      expect(error?.exitCode).toBe(ExitCode.ClusterUnavailable)
      expect(error?.message).toBe(
        `cannot read the fleet policy, ConfigMap kube-system/kata-lcm-policy: ${cause.message}; a run does not go on without the fleet's policy`,
      )
      expect(error?.suggestions.at(-1)).toMatch(/--no-policy/)
    },
  )

  it('no usable kubeconfig: the cluster is not asked, and that error (not a missing policy) is kept for where the cluster is needed', async () => {
    const noKubeconfig = new InputError('--kubeconfig', 'cannot load /nonexistent/kubeconfig: ENOENT')
    const broken = await findPolicy(
      () => {
        throw noKubeconfig
      },
      { namespace: 'kube-system' },
    )
    expect(broken.noCluster).toBe(noKubeconfig)
    expect(broken.source).toBeUndefined()
    expect(broken.looked).toEqual([
      'ConfigMap kube-system/kata-lcm-policy (not asked: --kubeconfig: cannot load /nonexistent/kubeconfig: ENOENT)',
    ])
  })

  it('init: one verification pod per Kata RuntimeClass family, a policy that validates and verifies with the first', async () => {
    const cluster = new FakeCluster(new FakeClock())
    cluster.runtimeClasses.push(
      { name: 'kata-qemu-tdx', handler: 'kata-qemu-tdx' },
      { name: 'kata-qemu', handler: 'kata-qemu' },
      { name: 'kata-clh', handler: 'kata-clh' },
      { name: 'runc', handler: 'runc' },
    )
    expect(kataFamilies(cluster.runtimeClasses)).toEqual([
      { family: 'clh', name: 'kata-clh' },
      { family: 'qemu', name: 'kata-qemu' },
    ])
    const starter = await starterFiles(cluster, { name: 'kata-deploy', namespace: 'kube-system' })
    expect(starter.pods.map((p) => p.file)).toEqual(['verify-kata-clh.yaml', 'verify-kata-qemu.yaml'])
    for (const pod of starter.pods) expect(() => parseVerificationTemplate(pod.text, pod.file)).not.toThrow()
    const policy = parsePolicy(starter.policy, 'starter')
    expect((policy.verification?.pod?.spec as { runtimeClassName: string }).runtimeClassName).toBe('kata-clh')
    // The commented gates are off as written, and valid once uncommented.
    expect(policy.windows).toBeUndefined()
    const uncommented = parsePolicy(
      starter.policy.replace(
        /^# (windows:| {2}- |workloads:| {2}onDisruption:|alerts:| {2}(url|match|timeout):)/gm,
        '$1',
      ),
      'starter, uncommented',
    )
    expect(uncommented.windows).toEqual([{ days: 'Mon-Fri', start: '02:00', end: '05:00', timeZone: 'Europe/Berlin' }])
    expect(uncommented.workloads).toEqual({ onDisruption: 'stop' })
    expect(uncommented.alerts).toEqual({
      url: 'http://prometheus.monitoring:9090',
      match: 'severity="critical"',
      timeout: '1h',
    })
    await expect(starterFiles(new FakeCluster(new FakeClock()), { name: 'kd', namespace: 'ns' })).rejects.toThrow(
      /no Kata RuntimeClass/,
    )
  })
})

describe('the policy in effect, named by every run', () => {
  const FROM_CLUSTER = { name: 'ConfigMap kube-system/kata-lcm-policy', namespace: 'kube-system' }

  it('upgrade: its first line and its report (and the human report under its title)', async () => {
    const s = await scenario({ nodes: 2 })
    const report = await upgrade(s.deps, s.upgradeRequest({ policy: FROM_CLUSTER }), 'run-1')
    expect(report.outcome).toBe('success')
    expect(s.events.events[0]).toEqual({ type: 'info', message: 'policy: ConfigMap kube-system/kata-lcm-policy' })
    expect(report.policy).toBe('ConfigMap kube-system/kata-lcm-policy')
    expect(formatLifecycleReport(report)[1]).toBe('policy: ConfigMap kube-system/kata-lcm-policy')
  })

  it('a dry run and a refused run say it first too', async () => {
    const s = await scenario({ nodes: 2 })
    const dry = await upgrade(s.deps, s.upgradeRequest({ dryRun: true, policy: { name: 'file p.yaml' } }), 'run-1')
    expect(dry.policy).toBe('file p.yaml')
    const refused = await scenario({ nodes: 2 })
    refused.cluster.denied.add('patch nodes')
    await expect(upgrade(refused.deps, refused.upgradeRequest(), 'run-1')).rejects.toThrow(/may not patch nodes/)
    expect(refused.events.events).toEqual([{ type: 'info', message: 'policy: none (--no-policy)' }])
  })

  it('rollback NODE and the Argo plan step: first line and report', async () => {
    const s = await scenario({ nodes: 2 })
    await upgrade(s.deps, s.upgradeRequest(), 'run-1')
    const before = s.events.events.length
    const report = await rollbackNode(s.deps, s.rollbackRequest('node-1', { policy: FROM_CLUSTER }), 'run-2')
    expect(s.events.events[before]).toEqual({ type: 'info', message: 'policy: ConfigMap kube-system/kata-lcm-policy' })
    expect(report.policy).toBe('ConfigMap kube-system/kata-lcm-policy')

    const argo = await scenario({ nodes: 2 })
    const name =
      "the workflow's parameters over the template's defaults (their policy: ConfigMap kube-system/kata-lcm-policy)"
    const plan = await planStep(argo.deps, argo.upgradeRequest({ policy: { name } }), 'run-1', 'argo/wf')
    expect(argo.events.events[0]).toEqual({ type: 'info', message: `policy: ${name}` })
    expect(plan.policy).toBe(name)
  })
})
