import { parseAllDocuments } from 'yaml'
import type { NodeView, PodView, Taint } from '../../ports/cluster.port.js'
import { InputError } from '../errors.js'
import { documentValue } from '../settings/yaml-value.js'
import { hopelessContainer } from './pod-waiting.js'

/** A label kata-lcm puts on every verification pod it creates, so a rerun can find and clean up leftovers. */
export const VERIFICATION_LABEL = 'kata-lcm.katacontainers.io/verification-for'

const FIELD = '--verification-pod'

/** The user's verification pod, parsed and checked once, rendered per node. */
export interface VerificationTemplate {
  /** The raw text with `${NODE}` / `${TEST_POD}` placeholders. */
  source: string
  /** Where it came from, for messages. */
  origin: string
}

/**
 * Parses and checks the verification pod before anything is written: exactly one YAML document,
 * a v1 Pod, uses `${NODE}`, restartPolicy Never (or unset), at least one container. Pure.
 */
export function parseVerificationTemplate(source: string, origin: string): VerificationTemplate {
  if (!source.includes('${NODE}')) {
    throw new InputError(
      FIELD,
      `${origin} never uses \${NODE}; pin the pod to the node being verified, e.g. spec.nodeSelector: {kubernetes.io/hostname: \${NODE}}`,
    )
  }
  const template = { source, origin }
  const manifest = renderManifest(template, 'node-placeholder', 'pod-placeholder')
  const spec = manifest.spec as Record<string, unknown> | undefined
  const containers = spec?.containers
  if (!Array.isArray(containers) || containers.length === 0) {
    throw new InputError(
      `${FIELD} spec.containers`,
      `${origin} has no containers; give at least one container whose exit code is the verdict`,
    )
  }
  const restartPolicy = spec?.restartPolicy
  if (restartPolicy !== undefined && restartPolicy !== 'Never') {
    throw new InputError(
      `${FIELD} spec.restartPolicy`,
      `is "${String(restartPolicy)}"; use Never so a failing check ends the pod as Failed instead of restarting`,
    )
  }
  return template
}

/**
 * Renders the template for one node: its manifest, parsed once per template, with `${NODE}` and
 * `${TEST_POD}` filled in every key and string. A filled-in value is always a string (a node named
 * `123` is the label value "123", never the number a textual substitution would have parsed to).
 */
export function renderVerificationPod(
  template: VerificationTemplate,
  node: string,
  podName: string,
  namespace: string,
): Record<string, unknown> {
  const manifest = renderManifest(template, node, podName)
  const metadata = (manifest.metadata ?? {}) as Record<string, unknown>
  const labels = { ...((metadata.labels ?? {}) as Record<string, string>), [VERIFICATION_LABEL]: node }
  // kata-lcm owns the name and namespace so concurrent pods in a wave never collide.
  manifest.metadata = { ...metadata, name: podName, namespace, labels }
  return manifest
}

function renderManifest(template: VerificationTemplate, node: string, podName: string): Record<string, unknown> {
  const fill = (text: string) => text.replaceAll(NODE_MARK, node).replaceAll(POD_MARK, podName)
  return fillIn(parsedManifest(template), fill) as Record<string, unknown>
}

/**
 * What the placeholders stand as while the template is parsed: `${NODE}` itself is YAML syntax in a
 * flow mapping (`{kubernetes.io/hostname: ${NODE}}`, the design's example), so each is parsed as a
 * mark of its own length (an error's column is the user's), of characters no manifest holds
 * (Unicode's private use), and filled in after.
 */
const NODE_MARK = '\uE000NODE\uE000\uE000'
const POD_MARK = '\uE000TEST_POD\uE000\uE000'

/**
 * The template's manifest with its placeholders marked, parsed and checked once per template:
 * a wave renders it for each of its nodes, and a plan checks it against each of the fleet's (a
 * 1000-node fleet parsed it 2000 times, about a second, before wave 1).
 */
const PARSED = new Map<string, Record<string, unknown>>()

function parsedManifest(template: VerificationTemplate): Record<string, unknown> {
  // By text: a pool's pod, chosen (and checked again) per node, is parsed once (a process sees a handful).
  const known = PARSED.get(template.source)
  if (known) return known
  const marked = template.source.replaceAll('${NODE}', NODE_MARK).replaceAll('${TEST_POD}', POD_MARK)
  const docs = parseAllDocuments(marked).filter((d) => d.contents !== null)
  if (docs.length !== 1) {
    throw new InputError(FIELD, `${template.origin} holds ${docs.length} YAML documents; give exactly one Pod`)
  }
  const doc = docs[0]!
  if (doc.errors.length > 0)
    throw new InputError(FIELD, `${template.origin} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`)
  const value = documentValue(doc, (why) => new InputError(FIELD, `${template.origin}: ${why}`))
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InputError(FIELD, `${template.origin} is not a YAML mapping; give a Pod manifest`)
  const manifest = value as Record<string, unknown>
  if (manifest.kind !== 'Pod' || (manifest.apiVersion !== 'v1' && manifest.apiVersion !== undefined)) {
    throw new InputError(
      `${FIELD} kind`,
      `${template.origin} is a ${String(manifest.apiVersion ?? '?')}/${String(manifest.kind ?? '?')}; give a v1 Pod (kind: Pod)`,
    )
  }
  PARSED.set(template.source, manifest)
  return manifest
}

/** A fresh copy of a parsed YAML value with `fill` applied to every key and string. Pure. */
function fillIn(value: unknown, fill: (text: string) => string): unknown {
  if (typeof value === 'string') return fill(value)
  if (Array.isArray(value)) return value.map((item) => fillIn(item, fill))
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [fill(key), fillIn(item, fill)]))
  return value
}

/**
 * Checks the pod can run on the node while it is cordoned and carries its taints: it must tolerate
 * node.kubernetes.io/unschedulable (or bind with spec.nodeName) and every NoSchedule/NoExecute taint.
 * Returns the first problem, naming the field. Pure.
 */
export function checkSchedulable(template: VerificationTemplate, node: NodeView): string | undefined {
  const manifest = renderManifest(template, node.name, 'check')
  const spec = (manifest.spec ?? {}) as Record<string, unknown>
  const tolerations = (Array.isArray(spec.tolerations) ? spec.tolerations : []) as Toleration[]
  const bound = typeof spec.nodeName === 'string' && spec.nodeName !== ''
  const cordon: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }
  // A pod bound with spec.nodeName skips the scheduler: only NoExecute taints can stop it then.
  const needed = [
    ...(bound ? [] : [cordon]),
    ...node.taints.filter((t) => t.effect === 'NoExecute' || (!bound && t.effect === 'NoSchedule')),
  ]
  const missing = needed.find((taint) => !tolerations.some((t) => tolerates(t, taint)))
  if (missing === undefined) return undefined
  return `${FIELD} spec.tolerations: the pod does not tolerate ${missing.key}${missing.value ? `=${missing.value}` : ''}:${missing.effect} on node ${node.name}, so it could never start there while the node is cordoned; add a toleration (e.g. - operator: Exists)`
}

interface Toleration {
  key?: string
  operator?: string
  value?: string
  effect?: string
}

function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false
  if (t.operator === 'Exists') return !t.key || t.key === taint.key
  return t.key === taint.key && (t.value ?? '') === (taint.value ?? '')
}

/** The verdict on a verification pod at one moment; `undefined` = keep watching. */
export type VerificationVerdict = { passed: true } | { passed: false; reason: string }

/**
 * Judges a verification pod: Succeeded passes; Failed, any non-zero exit, or a hopeless waiting
 * reason fails at once; anything else keeps watching (the caller's deadline catches stuck pods). Pure.
 */
export function judgeVerificationPod(pod: PodView | undefined): VerificationVerdict | undefined {
  if (pod === undefined) return undefined
  if (pod.phase === 'Succeeded') return { passed: true }
  const failedContainer = pod.containers.find((c) => c.state === 'terminated' && (c.exitCode ?? 0) !== 0)
  if (pod.phase === 'Failed' || failedContainer) {
    const c = failedContainer ?? pod.containers.find((x) => x.state === 'terminated')
    const detail = c
      ? `container ${c.name} exited ${c.exitCode ?? '?'}${c.reason ? ` (${c.reason})` : ''}`
      : 'pod Failed'
    return { passed: false, reason: `verification pod ${pod.name} failed: ${detail}` }
  }
  const hopeless = hopelessContainer(pod)
  if (hopeless)
    return {
      passed: false,
      reason: `verification pod ${pod.name} cannot start: container ${hopeless.name} ${hopeless.reason}${hopeless.message ? `: ${hopeless.message}` : ''}`,
    }
  return undefined
}

/** Why a pod that never finished is stuck, for the timeout message. Pure. */
export function describeStuckPod(pod: PodView | undefined): string {
  if (pod === undefined) return 'the pod was never seen'
  const unscheduled = pod.conditions.find((c) => c.type === 'PodScheduled' && c.status === 'False')
  if (unscheduled)
    return `stuck Pending: ${unscheduled.reason ?? 'Unschedulable'}${unscheduled.message ? `: ${unscheduled.message}` : ''}`
  const waiting = pod.containers.find((c) => c.state === 'waiting')
  if (waiting) return `stuck ${pod.phase}: container ${waiting.name} waiting (${waiting.reason ?? 'unknown reason'})`
  return `still ${pod.phase}`
}

/** A unique, valid pod name for one node's verification (`${TEST_POD}`). */
export function verificationPodName(node: string, suffix: string): string {
  const base = `kata-verify-${node}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 50)
    .replace(/-+$/, '')
  return `${base}-${suffix}`
}
