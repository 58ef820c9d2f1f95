/**
 * The settings table (src/lifecycle/settings/settings.ts) holds every place a setting lives together: the
 * upgrade command's flags, the policy's JSON schema, the chart's values.yaml and values.schema.json,
 * the WorkflowTemplate's parameters and the arguments of its plan step (rendered with the real helm),
 * and the flags `step plan` takes. Each setting is in each, or the table says why the template does
 * not carry it, and `step plan` then refuses it by name (exit 2) unless it is a process option.
 * Adding a flag or a policy field without its table entry and its template parameter fails here.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Upgrade from '../../../src/commands/upgrade.js'
import StepPlan from '../../../src/commands/step/plan.js'
import { chartDefaults, parsePolicy, type Policy } from '../../../src/lifecycle/policy/policy.js'
import { POLICY_SCHEMA } from '../../../src/lifecycle/policy/policy-schema.js'
import { chartDefaultsSchema, SETTINGS, valueAt, type Setting } from '../../../src/lifecycle/settings/settings.js'
import { POOLS } from '../../../src/lifecycle/settings/value-schemas.js'
import { DURATION_PATTERN } from '../../../src/lifecycle/settings/durations.js'
import { runCli } from '../commands/cli.js'
import { GENERATED_FILES } from '../../../scripts/settings-files.js'
import { VERIFICATION_POD } from '../../fakes/scenario.js'
import { FULL_POLICY } from '../../fakes/full-policy.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const CHART = path.join(ROOT, 'chart')
const BIN = path.join(process.env.KATA_LCM_CACHE ?? path.join(homedir(), '.cache/kata-lcm'), 'bin')
const HELM = process.env.HELM ?? path.join(BIN, 'helm')



/**
 * For each policy field the template does not carry: a value of it, which install-workflow's
 * chartDefaults must refuse naming the field (never drop). Empty while the template carries every field.
 */
const REFUSED_POLICY_SAMPLES: Record<string, unknown> = {}

/**
 * `step plan` flags that are no setting of a run: the step's own (its lock holder, the policy it
 * names, the template's pods of waves), and the file form of the verification pod.
 */
const STEP_ONLY = ['holder', 'policy-in-effect', 'waves-per-pod', 'verification-pod']

type Argo = Extract<Setting['argo'], { parameter: string }>
const carried = SETTINGS.filter((s): s is Setting & { argo: Argo } => 'parameter' in s.argo)
const planFlag = (s: Setting & { argo: Argo }) => s.argo.planFlag ?? s.flag

interface SchemaNode {
  type?: string
  additionalProperties?: boolean
  properties?: Record<string, SchemaNode>
}

/** The policy's fields, as dotted paths: a closed mapping's own fields, every other field as a whole. */
function policyFields(schema: SchemaNode, prefix = ''): string[] {
  return Object.entries(schema.properties ?? {}).flatMap(([key, child]) =>
    child.additionalProperties === false && child.properties
      ? policyFields(child, `${prefix}${key}.`)
      : [`${prefix}${key}`],
  )
}

interface Rendered {
  parameters: Record<string, string>
  plan: string[]
  rollbackNode: string[]
}

let dir: string

async function render(values?: Record<string, unknown>): Promise<Rendered> {
  const podFile = path.join(dir, 'pod.yaml')
  await writeFile(podFile, VERIFICATION_POD)
  const extra: string[] = []
  if (values) {
    const file = path.join(dir, 'values.yaml')
    await writeFile(file, stringify(values))
    extra.push('-f', file)
  }
  const r = await execa(
    HELM,
    ['template', 'k', CHART, '-n', 'argo', '--set-file', `defaults.verificationPod=${podFile}`, ...extra],
    { reject: false, stdin: 'ignore' },
  )
  expect(r.stderr).toBe('')
  const objs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind?: string; spec?: unknown })
  const wt = objs.find((o) => o?.kind === 'WorkflowTemplate')!.spec as {
    arguments: { parameters: { name: string; value: string }[] }
    templates: { name: string; container?: { args?: string[] } }[]
  }
  const args = (name: string) => wt.templates.find((t) => t.name === name)!.container!.args!
  return {
    parameters: Object.fromEntries(wt.arguments.parameters.map((p) => [p.name, p.value])),
    plan: args('plan'),
    rollbackNode: args('rollback-node'),
  }
}

const valuesYaml = parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as {
  defaults: Record<string, unknown>
}
const valuesSchema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as {
  properties: { defaults: { properties: Record<string, unknown> } }
}

beforeAll(async () => {
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: build it with scripts/testbed/build-tools.sh helm`)
  dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-settings-'))
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('the settings table', () => {
  it("has exactly the upgrade command's flags, each once", () => {
    const flags = SETTINGS.map((s) => s.flag)
    expect(new Set(flags).size).toBe(flags.length)
    expect([...flags].sort()).toEqual(Object.keys(Upgrade.flags).sort())
  })

  it("has exactly the policy schema's fields (its identity aside), each once", () => {
    const fields = SETTINGS.flatMap((s) => (s.policy ? [s.policy] : []))
    expect(new Set(fields).size).toBe(fields.length)
    const schema = policyFields(POLICY_SCHEMA as SchemaNode).filter((f) => f !== 'apiVersion' && f !== 'kind')
    expect([...fields].sort()).toEqual(schema.sort())
    // The fixture below sets every one the template carries.
    const policy = parsePolicy(FULL_POLICY, 'full policy')
    for (const s of carried) if (s.policy) expect(valueAt(policy, s.policy), s.policy).toBeDefined()
  })

  it("docs/policy.md's example policy sets every field the schema has, and names each one's flag", () => {
    const doc = readFileSync(path.join(ROOT, 'docs/policy.md'), 'utf8')
    const example = /## The document\n\n```yaml\n([\s\S]*?)```/.exec(doc)![1]!
    // The example elides a pod (`pod: { ... }`) and a pod's spec (`{ ... }`).
    const filled = example.replaceAll('pod: { ... }', 'pod: { apiVersion: v1, kind: Pod, spec: {} }')
    const policy = parsePolicy(filled.replaceAll('{ ... }', '{}'), 'docs/policy.md')
    const schema = policyFields(POLICY_SCHEMA as SchemaNode)
    expect(schema.filter((f) => valueAt(policy, f) === undefined)).toEqual([])
    for (const s of SETTINGS) if (s.policy) expect(example, s.policy).toContain(`--${s.flag}`)
  })

  it("builds the policy's schema from the entries: each field its setting's value schema, named by its flag", () => {
    for (const s of SETTINGS) {
      if (!s.policy) continue
      const path = s.policy.split('.')
      const field = path.reduce<SchemaNode | undefined>((node, key) => node?.properties?.[key], POLICY_SCHEMA as SchemaNode)
      expect(field, s.policy).toEqual({ ...s.schema, description: `--${s.flag}: ${s.help}` })
    }
    // A --pools file's items and the policy's pools are one schema; the taint's key is required in both.
    expect(valueAt(POLICY_SCHEMA, 'properties.pools')).toMatchObject({ type: 'array', items: POOLS.items })
    expect(valueAt(POLICY_SCHEMA, 'properties.nodeTaint.required')).toEqual(['key'])
    expect(valueAt(POOLS.items, 'properties.nodeTaint.required')).toEqual(['key'])
  })

  it("derives a chart value's schema from the setting's: a string parameter, empty when the setting has no default", () => {
    const chart = chartDefaultsSchema()
    expect(chart.canary).toEqual({ anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^([1-9][0-9]*)?$' }] })
    expect(chart.soak).toEqual({ type: 'string', pattern: `^(|${DURATION_PATTERN.slice(1, -1)})$` })
    expect(chart.drainTimeout).toEqual({ type: 'string', pattern: DURATION_PATTERN })
    expect(chart.previousChart).toEqual({ type: 'string' })
    expect(chart.nodeTaintKey).toEqual({ type: 'string' })
    expect(chart.alertUrl).toEqual({ type: 'string', pattern: '^(|https?://.+)$' })
    expect(chart.drainForce).toEqual({ type: 'boolean' })
  })

  it('a policy field the template does not carry is refused by install-workflow by name, never dropped', () => {
    const refused = SETTINGS.flatMap((s) => (s.policy && 'not' in s.argo ? [s.policy] : []))
    expect(Object.keys(REFUSED_POLICY_SAMPLES).sort()).toEqual(refused.sort())
    const policy = parsePolicy(FULL_POLICY, 'full policy')
    for (const field of refused) {
      const [head, ...rest] = field.split('.').reverse()
      const value = rest.reduce<unknown>((v, key) => ({ [key]: v }), { [head!]: REFUSED_POLICY_SAMPLES[field] })
      expect(() => chartDefaults({ ...policy, ...(value as object) }), field).toThrow(field.split('.')[0])
    }
  })

  it("has exactly the chart's defaults, in values.yaml and values.schema.json (defaults.policy: the step's, not a setting)", () => {
    const keys = carried.flatMap((s) => (s.argo.chart ? [s.argo.chart] : []))
    expect(new Set(keys).size).toBe(keys.length)
    expect(Object.keys(valuesYaml.defaults).sort()).toEqual([...keys, 'policy'].sort())
    expect(Object.keys(valuesSchema.properties.defaults.properties).sort()).toEqual([...keys, 'policy'].sort())
  })

  it('generates values.schema.json, values.yaml\'s defaults, the template\'s parameters and docs/argo.md\'s table (npm run generate): each checked-in file is what the table gives', () => {
    for (const [file, derive] of Object.entries(GENERATED_FILES)) {
      const current = readFileSync(path.join(ROOT, file), 'utf8')
      expect(derive(current), `${file}: run npm run generate`).toBe(current)
    }
    // The enums come from their one source: the modes' list, the workloads check's choices.
    expect(chartDefaultsSchema().deploymentMode).toEqual({ type: 'string', enum: ['auto', 'daemonset', 'job'] })
    expect(chartDefaultsSchema().onWorkloadDisruption).toEqual({ type: 'string', enum: ['report', 'stop'] })
  })

  it("gives each flag of upgrade and step plan its help and default (the policy's field named)", () => {
    const flags = Upgrade.flags as Record<string, { description?: string; default?: unknown }>
    const stepFlags = StepPlan.flags as Record<string, { description?: string; default?: unknown }>
    for (const s of SETTINGS) {
      const help = s.policy ? `${s.help} Policy field: ${s.policy}.` : s.help
      for (const [command, flag] of [
        ['upgrade', flags[s.flag]],
        ['step plan', STEP_ONLY.includes(s.flag) ? undefined : stepFlags[s.flag]],
      ] as const) {
        if (!flag) continue
        expect(flag.description, `${command} --${s.flag}`).toBe(help)
        const expected = typeof s.default === 'number' ? String(s.default) : s.default
        expect(flag.default, `${command} --${s.flag}`).toBe(expected ?? (typeof flag.default === 'boolean' ? false : undefined))
      }
    }
    // The values.yaml defaults are the flags' defaults.
    for (const s of carried) {
      if (s.argo.chart) expect(valuesYaml.defaults[s.argo.chart], s.flag).toEqual(s.default ?? '')
    }
  })

  it("has exactly the template's parameters (node-name: rollback-node's own), each with the chart's default", async () => {
    const { parameters } = await render()
    expect(Object.keys(parameters).sort()).toEqual([...carried.map((s) => s.argo.parameter), 'node-name'].sort())
    for (const s of carried) {
      if (!s.argo.chart || s.content) continue
      expect(parameters[s.argo.parameter], s.flag).toBe(String(valuesYaml.defaults[s.argo.chart]))
    }
  })

  it('passes every parameter to step plan as its flag (a boolean as --flag or --no-flag), and step plan takes them all', async () => {
    const { plan } = await render()
    const stepFlags = StepPlan.flags as Record<string, { type: string; allowNo?: boolean }>
    for (const s of carried) {
      const flag = planFlag(s)
      expect(stepFlags[flag], `step plan --${flag}`).toBeDefined()
      const p = s.argo.parameter
      if (stepFlags[flag]!.type === 'boolean') {
        expect(stepFlags[flag]!.allowNo, `--no-${flag}`).toBe(true)
        expect(plan).toContain(`{{=workflow.parameters['${p}'] == 'true' ? '--${flag}' : '--no-${flag}'}}`)
      } else {
        const arg = plan.find((a) => a.startsWith(`--${flag}=`))
        expect(arg, `--${flag}`).toBeDefined()
        expect(arg!.includes(`workflow.parameters.${p}}}`) || arg!.includes(`workflow.parameters['${p}']`), arg).toBe(
          true,
        )
      }
    }
    const settings = new Set(carried.map(planFlag))
    const notCarried = SETTINGS.filter((s) => 'not' in s.argo).map((s) => s.flag)
    for (const flag of Object.keys(stepFlags))
      expect(settings.has(flag) || STEP_ONLY.includes(flag) || notCarried.includes(flag), flag).toBe(true)
  })

  it('a setting the template does not carry is refused by step plan by name (exit 2), unless it is a process option', async () => {
    for (const s of SETTINGS) {
      if (!('not' in s.argo)) continue
      expect(s.argo.not.length, s.flag).toBeGreaterThan(20)
      if (s.flag in StepPlan.flags) continue
      const r = await runCli(StepPlan, ['--holder=h', '--target-version=3.28.0', `--${s.flag}`])
      expect(r.code, s.flag).toBe(2)
      expect(r.stderr, s.flag).toContain(`--${s.flag}`)
    }
  })

  it("carries a policy that sets every field from install-workflow's chart defaults to the plan step's parameters", async () => {
    const policy: Policy = parsePolicy(FULL_POLICY, 'full policy')
    const defaults = chartDefaults(policy)!
    const { parameters, plan, rollbackNode } = await render({ defaults })
    for (const s of carried) {
      if (!s.policy) continue
      const expected =
        s.flag === 'pools'
          ? Buffer.from(stringify(policy.pools, { lineWidth: 0 })).toString('base64')
          : s.flag === 'verification-pod'
            ? '' // empty: the chart's verificationPod, which install-workflow sets from the policy's
            : s.flag === 'window'
              ? 'Mon,Tue,Wed,Thu,Fri 02:00-05:00 Europe/Berlin; 22:00-01:00 UTC' // as --window takes each
              : String(valueAt(policy, s.policy))
      expect(parameters[s.argo.parameter], `${s.policy} -> ${s.argo.parameter}`).toBe(expected)
    }
    expect(parameters).toMatchObject({
      'previous-chart': '/charts/kata-deploy-3.27.0.tgz',
      'drain-enabled': 'true',
      'drain-force': 'true',
      'drain-delete-emptydir-data': 'true',
      'ready-timeout': '10m',
      'helm-timeout': '20m',
    })
    expect(plan).toEqual(
      expect.arrayContaining([
        '--previous-chart={{workflow.parameters.previous-chart}}',
        '--ready-timeout={{workflow.parameters.ready-timeout}}',
        '--helm-timeout={{workflow.parameters.helm-timeout}}',
        "{{=workflow.parameters['drain-force'] == 'true' ? '--drain-force' : '--no-drain-force'}}",
      ]),
    )
    // rollback-node honours the timeouts too (kata-lcm rollback takes them).
    expect(rollbackNode).toEqual(
      expect.arrayContaining([
        '--ready-timeout={{workflow.parameters.ready-timeout}}',
        '--helm-timeout={{workflow.parameters.helm-timeout}}',
      ]),
    )
  })
})
