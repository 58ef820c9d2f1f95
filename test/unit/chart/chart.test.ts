/**
 * The kata-lifecycle-manager chart through the real helm and argo binaries of the test bed
 * (scripts/testbed/build-tools.sh helm argo): lint, the required verification pod, the shape of the
 * WorkflowTemplate (parameters, entrypoints, the step contract, the wave loop), least-privilege RBAC,
 * and `argo lint --offline` on the rendered template. No cluster.
 */
import { HELD_EXIT_CODE } from '../../../src/commands/step/alerts.js'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { parseAllDocuments } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VERIFICATION_POD } from '../../fakes/scenario.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const CHART = path.join(ROOT, 'chart')
const BIN = path.join(process.env.KATA_LCM_CACHE ?? path.join(homedir(), '.cache/kata-lcm'), 'bin')
const HELM = process.env.HELM ?? path.join(BIN, 'helm')
const ARGO = process.env.ARGO ?? path.join(BIN, 'argo')


/** The parameters the design names, plus chart and verification-timeout. */
const PARAMETERS = ['target-version', 'node-selector', 'node-taint-key', 'node-taint-value', 'batch-size', 'deployment-mode', 'drain-enabled', 'drain-timeout', 'verification-pod', 'helm-release', 'helm-namespace', 'verification-namespace', 'node-name']

type Obj = { kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown }
interface Container { image: string; command: string[]; args?: string[]; securityContext?: Record<string, unknown> }
interface Template { name: string; container?: Container; steps?: { name: string; template: string; when?: string; withSequence?: Record<string, string>; arguments?: { parameters?: { name: string; value: string }[] } }[][]; parallelism?: number; failFast?: boolean; inputs?: { artifacts?: { raw?: { data: string } }[] }; script?: unknown; retryStrategy?: { expression?: string; backoff?: Record<string, string> } }
interface WorkflowTemplate extends Obj { spec: { entrypoint: string; onExit: string; serviceAccountName: string; arguments: { parameters: { name: string; value?: string }[] }; templates: Template[] } }
interface Rule { apiGroups: string[]; resources: string[]; verbs: string[] }

let dir: string
let podFile: string

async function helm(args: string[]) {
  return execa(HELM, args, { reject: false, stdin: 'ignore' })
}

async function render(extra: string[] = []): Promise<Obj[]> {
  const r = await helm(['template', 'kata-lifecycle-manager', CHART, '-n', 'argo', '--set-file', `defaults.verificationPod=${podFile}`, ...extra])
  expect(r.stderr).toBe('')
  expect(r.exitCode).toBe(0)
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter(Boolean)
}

function workflowTemplate(objs: Obj[]): WorkflowTemplate {
  const found = objs.filter((o) => o.kind === 'WorkflowTemplate')
  expect(found).toHaveLength(1)
  return found[0] as WorkflowTemplate
}

function template(wt: WorkflowTemplate, name: string): Template {
  const t = wt.spec.templates.find((x) => x.name === name)
  if (!t) throw new Error(`no template ${name}`)
  return t
}

beforeAll(async () => {
  for (const bin of [HELM, ARGO]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: build it with scripts/testbed/build-tools.sh helm argo`)
  }
  dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-chart-'))
  podFile = path.join(dir, 'verification-pod.yaml')
  await writeFile(podFile, VERIFICATION_POD)
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('kata-lifecycle-manager chart', () => {
  it('passes helm lint --strict', async () => {
    const r = await helm(['lint', '--strict', CHART, '--set-file', `defaults.verificationPod=${podFile}`])
    expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed')
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/)
    expect(r.exitCode).toBe(0)
  })

  it('refuses to render without a verification pod, saying how to give one', async () => {
    const r = await helm(['template', 'kata-lifecycle-manager', CHART, '-n', 'argo'])
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr).toContain('defaults.verificationPod is required')
    expect(r.stderr).toContain('--set-file defaults.verificationPod=./verification-pod.yaml')
  })

  it('rejects values the schema does not allow, naming them', async () => {
    const bad = await helm(['template', 'x', CHART, '--set-file', `defaults.verificationPod=${podFile}`, '--set', 'defaults.batchSize=0'])
    expect(bad.exitCode).not.toBe(0)
    expect(bad.stderr).toMatch(/batchSize/)
    const typo = await helm(['template', 'x', CHART, '--set-file', `defaults.verificationPod=${podFile}`, '--set', 'defaults.drainEnable=true'])
    expect(typo.exitCode).not.toBe(0)
    expect(typo.stderr).toMatch(/drainEnable/)
  })

  it('a node selector value that reads like a boolean: --set fails the schema, --set-string (install-workflow has it) passes', async () => {
    const asBool = await helm(['template', 'x', CHART, '--set-file', `defaults.verificationPod=${podFile}`, '--set', 'nodeSelector.x=true'])
    expect(asBool.exitCode).not.toBe(0)
    expect(asBool.stderr).toMatch(/values don't meet the specifications of the schema/)
    const objs = await render(['--set-string', 'nodeSelector.x=true'])
    expect(JSON.stringify(workflowTemplate(objs))).toContain('"x":"true"')
  })

  it('renders the WorkflowTemplate with the design\'s parameters and entrypoints', async () => {
    const wt = workflowTemplate(await render())
    expect(wt.metadata).toMatchObject({ name: 'kata-lifecycle-manager', namespace: 'argo' })
    expect(wt.spec.entrypoint).toBe('deploy-version')
    expect(wt.spec.templates.map((t) => t.name)).toEqual(expect.arrayContaining(['deploy-version', 'rollback-node']))
    expect(wt.spec.arguments.parameters.map((p) => p.name)).toEqual(expect.arrayContaining(PARAMETERS))
    const params = Object.fromEntries(wt.spec.arguments.parameters.map((p) => [p.name, p.value]))
    expect(params).toMatchObject({ 'helm-release': 'kata-deploy', 'helm-namespace': 'kube-system', 'batch-size': '1', 'deployment-mode': 'auto', 'drain-enabled': 'false', 'verification-namespace': 'default', 'verification-pod': '' })
    // Every parameter has a value, so Argo accepts a submission of any entrypoint without it
    // (`--entrypoint rollback-node -p node-name=NODE`); deploy-version's plan refuses it empty.
    expect(params['target-version']).toBe('')
    expect(wt.spec.arguments.parameters.filter((p) => p.value === undefined).map((p) => p.name)).toEqual([])
  })

  it('follows argoNamespace and the defaults.* values', async () => {
    const wt = workflowTemplate(await render(['--set', 'argoNamespace=workflows', '--set', 'defaults.batchSize=3', '--set', 'defaults.drainEnabled=true', '--set', 'defaults.helmNamespace=kata']))
    expect(wt.metadata.namespace).toBe('workflows')
    const params = Object.fromEntries(wt.spec.arguments.parameters.map((p) => [p.name, p.value]))
    expect(params).toMatchObject({ 'batch-size': '3', 'drain-enabled': 'true', 'helm-namespace': 'kata' })
  })

  it('embeds the chart\'s verification pod base64-encoded as the default of the verification-pod parameter', async () => {
    const wt = workflowTemplate(await render())
    const arg = template(wt, 'plan').container!.args!.find((a) => a.startsWith('--verification-pod-b64='))!
    const b64 = /: '([A-Za-z0-9+/=]+)'\}\}$/.exec(arg)?.[1]
    expect(Buffer.from(b64!, 'base64').toString('utf8')).toBe(VERIFICATION_POD)
    expect(arg).toContain("workflow.parameters['verification-pod'] != ''")
  })

  it('runs the kata-lcm step contract: plan, then waves 1..N one at a time (with onePodPerWave=false: prepare, upgrade, verify, rollback), then finalize', async () => {
    const wt = workflowTemplate(await render(['--set', 'onePodPerWave=false']))
    expect(template(wt, 'deploy-version').steps!.map((group) => group.map((s) => s.name))).toEqual([['plan'], ['waves'], ['finalize']])
    const waves = template(wt, 'deploy-version').steps![1]![0]!
    expect(waves.arguments!.parameters![0]!.value).toBe("{{=jsonpath(steps.plan.outputs.result, '$.pods')}}")
    expect(template(wt, 'plan').container!.args).toContain('--waves-per-pod=1')

    const loop = template(wt, 'run-waves')
    expect(loop).toMatchObject({ parallelism: 1, failFast: true })
    expect(loop.steps![0]![0]).toMatchObject({ template: 'run-wave', when: '{{inputs.parameters.waves}} > 0', withSequence: { start: '1', count: '{{inputs.parameters.waves}}' } })
    // A loop, not recursion: run-wave calls no template that leads back to it.
    const runWave = template(wt, 'run-wave')
    expect(runWave.steps!.map((g) => g.map((s) => s.name))).toEqual([
      ['window'],
      ['alerts'],
      ['prepare'],
      ['upgrade'],
      ['verify'],
      ['rollback'],
    ])
    expect(new Set(runWave.steps!.flat().map((s) => s.template))).toEqual(
      new Set(['window-gate', 'alert-gate', 'wave-phase']),
    )
    // The alert gate only with an alert URL: step alerts, asked again by Argo's retry while it exits 75 (held).
    expect(runWave.steps![1]![0]!.when).toBe("'{{workflow.parameters.alert-url}}' != ''")
    const gate = template(wt, 'alert-gate')
    expect(gate.container!.command).toEqual(['kata-lcm', 'step', 'alerts'])
    expect(gate.retryStrategy).toMatchObject({ backoff: { duration: '15s', factor: '2', cap: '2m' } })
    expect(gate.retryStrategy!.expression).toMatch(new RegExp(`^asInt\\(lastRetry.exitCode\\) == ${HELD_EXIT_CODE} \\|\\| `))
    // Every step retries a lost pod: Error, killed by a signal, or Failed with no exit code reported
    // (Argo's retry scope says -1 when the pod was deleted before its executor reported one).
    for (const t of ['plan', 'wave-phase', 'finalize', 'exit', 'alert-gate', 'window-check'])
      expect(template(wt, t).retryStrategy!.expression, t).toContain(
        "lastRetry.status == 'Error' || (lastRetry.status == 'Failed' && asInt(lastRetry.exitCode) in [-1, 137, 143])",
      )
    // The window gate only with maintenance windows; inside it, Argo's suspend for the seconds step window gives.
    expect(runWave.steps![0]![0]!.when).toBe("'{{workflow.parameters.windows}}' != ''")
    expect(template(wt, 'window-check').container!.command).toEqual(['kata-lcm', 'step', 'window'])
    expect(template(wt, 'window-wait')).toMatchObject({ suspend: { duration: '{{inputs.parameters.seconds}}' } })

    const commands = (name: string) => template(wt, name).container!.command
    expect(commands('plan')).toEqual(['kata-lcm', 'step', 'plan'])
    expect(commands('wave-phase')).toEqual(['kata-lcm', 'step', '{{inputs.parameters.phase}}'])
    expect(template(wt, 'wave-phase').container!.args).toEqual(['--wave={{inputs.parameters.wave}}', '--outputs-dir=/tmp/kata-lcm-outputs', '--holder=argo/{{workflow.name}}', '--helm-release={{workflow.parameters.helm-release}}', '--helm-namespace={{workflow.parameters.helm-namespace}}'])
    expect(commands('finalize')).toEqual(['kata-lcm', 'step', 'finalize'])
    expect(wt.spec.onExit).toBe('exit-handler')
    expect(template(wt, 'exit-handler').steps![0]![0]).toMatchObject({
      template: 'exit',
      when: "'{{workflow.mainEntrypoint}}' == 'deploy-version' && '{{workflow.status}}' != 'Succeeded'",
    })
    expect(commands('exit')).toEqual(['kata-lcm', 'step', 'exit'])
    expect(commands('rollback-node')).toEqual(['kata-lcm', 'rollback'])
    expect(template(wt, 'rollback-node').container!.args![0]).toBe('{{workflow.parameters.node-name}}')
  })

  it('passes every plan flag the step contract names, each from its workflow parameter', async () => {
    const args = template(workflowTemplate(await render()), 'plan').container!.args!
    for (const flag of ['target-version', 'chart', 'node-selector', 'node-taint-key', 'node-taint-value', 'batch-size', 'deployment-mode', 'drain-timeout', 'verification-namespace', 'verification-timeout', 'helm-release', 'helm-namespace']) {
      expect(args).toContain(`--${flag}={{workflow.parameters.${flag}}}`)
    }
    expect(args).toContain('--holder=argo/{{workflow.name}}')
    // A boolean as --drain or --no-drain (never "--", which would end the options of the booleans after it).
    expect(args).toContain("{{=workflow.parameters['drain-enabled'] == 'true' ? '--drain' : '--no-drain'}}")
    // Not a parameter: the policy install-workflow rendered into the defaults, which the run names first.
    expect(args).toContain('--policy-in-effect=')
    const named = template(workflowTemplate(await render(['--set', 'defaults.policy=ConfigMap kube-system/kata-lcm-policy'])), 'plan')
    expect(named.container!.args).toContain('--policy-in-effect=ConfigMap kube-system/kata-lcm-policy')
  })

  it('runs every step from the kata-lcm image as non-root, with nothing installed at run time', async () => {
    const objs = await render(['--set', 'image.repository=registry.local/kata-lcm', '--set', 'image.tag=1.2.3'])
    const wt = workflowTemplate(objs)
    const sa = objs.find((o) => o.kind === 'ServiceAccount')!
    expect(wt.spec.serviceAccountName).toBe(sa.metadata.name)
    const containers = wt.spec.templates.filter((t) => t.container).map((t) => t.container!)
    expect(containers.length).toBeGreaterThanOrEqual(5)
    expect(wt.spec.templates.some((t) => t.script)).toBe(false)
    for (const c of containers) {
      expect(c.image).toBe('registry.local/kata-lcm:1.2.3')
      expect(c.command[0]).toBe('kata-lcm')
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true })
      expect(JSON.stringify(c)).not.toMatch(/apt-get|apk add|pip install|npm install|curl |wget /)
    }
    const digest = workflowTemplate(await render(['--set', 'image.tag=sha256:0123abcd']))
    expect(template(digest, 'plan').container!.image).toBe('ghcr.io/kata-containers/kata-lcm@sha256:0123abcd')
  })

  it('grants only named resources and verbs: no wildcards, no escalate/bind, Secrets only in the release namespace', async () => {
    const objs = await render(['--set', 'defaults.helmNamespace=kata-system', '--set', 'defaults.verificationNamespace=kata-verify'])
    const roles = objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role') as (Obj & { rules: Rule[] })[]
    for (const role of roles) {
      for (const rule of role.rules) {
        expect([...rule.verbs, ...rule.resources, ...rule.apiGroups]).not.toContain('*')
        expect(rule.verbs).not.toEqual(expect.arrayContaining(['escalate']))
        expect(rule.verbs).not.toEqual(expect.arrayContaining(['bind']))
        expect(rule.verbs).not.toEqual(expect.arrayContaining(['impersonate']))
      }
    }
    const clusterResources = roles.filter((r) => r.kind === 'ClusterRole').flatMap((r) => r.rules.flatMap((x) => x.resources))
    expect(clusterResources).not.toContain('secrets')
    expect(clusterResources).not.toContain('configmaps')
    const namespaces = new Set(roles.filter((r) => r.kind === 'Role').map((r) => r.metadata.namespace))
    expect(namespaces).toEqual(new Set(['kata-system', 'kata-verify', 'default', 'argo']))
    const secretsIn = roles.filter((r) => r.rules.some((x) => x.resources.includes('secrets'))).map((r) => `${r.kind}/${r.metadata.namespace}`)
    expect(new Set(secretsIn)).toEqual(new Set(['Role/kata-system']))
    // Every Role and ClusterRole is bound to the chart's ServiceAccount.
    const bindings = objs.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') as (Obj & { roleRef: { name: string }; subjects: { name: string; namespace: string }[] })[]
    expect(bindings.map((b) => `${b.kind}/${b.metadata.namespace ?? ''}/${b.roleRef.name}`).sort()).toEqual(roles.map((r) => `${r.kind}Binding/${r.metadata.namespace ?? ''}/${r.metadata.name}`).sort())
    for (const b of bindings) expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kata-lifecycle-manager', namespace: 'argo' }])
  })

  it("declares Argo custom metrics with Prometheus' names, each documented in docs/metrics.md as the controller serves it", async () => {
    type Metric = { name: string; help: string; counter?: object; gauge?: object; histogram?: object }
    type Metrics = { metrics?: { prometheus: Metric[] } }
    const wt = workflowTemplate(await render()) as unknown as { spec: Metrics & { templates: Metrics[] } }
    const metrics = [wt.spec.metrics, ...wt.spec.templates.map((t) => t.metrics)].flatMap((m) => m?.prometheus ?? [])
    expect(metrics.length).toBeGreaterThan(0)
    const doc = await readFile(path.join(ROOT, 'docs/metrics.md'), 'utf8')
    for (const m of metrics) {
      expect(m.name).toMatch(/^kata_lcm_[a-z_]+$/)
      expect(m.help).not.toBe('')
      // Counters end in _total, durations in _seconds; nothing else does.
      expect(m.name.endsWith('_total'), m.name).toBe(m.counter !== undefined)
      if (m.name.includes('duration') || m.name.includes('elapsed')) expect(m.name).toMatch(/_seconds$/)
      expect(doc).toContain(`\`argo_workflows_${m.name}\``)
      // Argo's full CRD (../shared/reference/argo) requires a gauge's realtime and a histogram's buckets.
      if (m.gauge) expect(m.gauge, m.name).toHaveProperty('realtime')
      if (m.histogram) expect(m.histogram, m.name).toHaveProperty('buckets')
    }
  })

  it('by default (onePodPerWave), each wave is one step pod (kata-lcm step wave) after its gates, and its node counts still reach the metrics', async () => {
    const wt = workflowTemplate(await render())
    const runWave = template(wt, 'run-wave')
    expect(runWave.steps!.map((g) => g.map((s) => s.name))).toEqual([['window'], ['alerts'], ['wave']])
    expect(runWave.steps![2]![0]).toMatchObject({ template: 'wave-phase', arguments: { parameters: [{ name: 'phase', value: 'wave' }, { name: 'wave', value: '{{inputs.parameters.wave}}' }] } })
    const counted = template(wt, 'wave-phase') as Template & { metrics?: { prometheus?: { name: string; when?: string }[] } }
    for (const m of counted.metrics!.prometheus!) expect(m.when, m.name).toBe("'{{inputs.parameters.phase}}' == 'rollback' || '{{inputs.parameters.phase}}' == 'wave'")
  })

  it("with overlapWaves, two waves' pods at a time, the later waiting for its turn and asking the gates itself; refused without onePodPerWave", async () => {
    const wt = workflowTemplate(await render(['--set', 'overlapWaves=true']))
    expect(template(wt, 'run-waves')).toMatchObject({ parallelism: 2, failFast: true })
    expect(template(wt, 'run-wave').steps!.map((g) => g.map((s) => s.name))).toEqual([['wave']])
    expect(template(wt, 'wave-phase').container!.args).toContain('--wait-turn')
    // Without it: one wave at a time, no --wait-turn.
    const plain = workflowTemplate(await render())
    expect(template(plain, 'run-waves')).toMatchObject({ parallelism: 1 })
    expect(template(plain, 'wave-phase').container!.args).not.toContain('--wait-turn')
    const r = await helm(['template', 'x', CHART, '--set-file', `defaults.verificationPod=${podFile}`, '--set', 'overlapWaves=true', '--set', 'onePodPerWave=false'])
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr).toMatch(/overlapWaves needs onePodPerWave/)
  })

  it('with wavesPerPod K, the loop is over the plan\'s pods, each pod running its K waves and asking the gates itself; refused without onePodPerWave', async () => {
    const wt = workflowTemplate(await render(['--set', 'wavesPerPod=5']))
    expect(template(wt, 'plan').container!.args).toContain('--waves-per-pod=5')
    expect(template(wt, 'run-waves')).toMatchObject({ parallelism: 1, failFast: true })
    expect(template(wt, 'run-wave').steps!.map((g) => g.map((s) => s.name))).toEqual([['wave']])
    const args = template(wt, 'wave-phase').container!.args!
    expect(args).toEqual(expect.arrayContaining(['--pod={{inputs.parameters.wave}}', '--waves-per-pod=5']))
    expect(args.filter((a) => a.startsWith('--wave='))).toEqual([])
    // Beside overlapWaves: the next pod waits for the one before's last wave.
    const both = workflowTemplate(await render(['--set', 'wavesPerPod=5', '--set', 'overlapWaves=true']))
    expect(template(both, 'wave-phase').container!.args).toEqual(expect.arrayContaining(['--pod={{inputs.parameters.wave}}', '--wait-turn']))
    // wavesPerPod=1 is the default's shape.
    expect(template(workflowTemplate(await render(['--set', 'wavesPerPod=1'])), 'wave-phase').container!.args).toContain('--wave={{inputs.parameters.wave}}')
    const r = await helm(['template', 'x', CHART, '--set-file', `defaults.verificationPod=${podFile}`, '--set', 'wavesPerPod=2', '--set', 'onePodPerWave=false'])
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr).toMatch(/wavesPerPod needs onePodPerWave/)
    const zero = await helm(['template', 'x', CHART, '--set-file', `defaults.verificationPod=${podFile}`, '--set', 'wavesPerPod=0'])
    expect(zero.exitCode).not.toBe(0)
    expect(zero.stderr).toMatch(/wavesPerPod/)
  })

  for (const extra of [[], ['--set', 'onePodPerWave=false'], ['--set', 'overlapWaves=true'], ['--set', 'wavesPerPod=5']])
    it(`passes argo lint --offline${extra.length ? ` (${extra[1]})` : ''}`, async () => {
      const r = await helm(['template', 'kata-lifecycle-manager', CHART, '-n', 'argo', '--set-file', `defaults.verificationPod=${podFile}`, ...extra, '--show-only', 'templates/workflow-template.yaml'])
      expect(r.exitCode).toBe(0)
      const file = path.join(dir, 'workflow-template.yaml')
      await writeFile(file, r.stdout)
      const lint = await execa(ARGO, ['lint', '--offline', '--strict', '--output', 'simple', '--kinds', 'workflowtemplates', file], { reject: false, stdin: 'ignore', env: { NO_COLOR: '1' } })
      expect(`${lint.stdout}${lint.stderr}`).toMatch(/no linting errors found/i)
      expect(lint.exitCode).toBe(0)
    })
})
