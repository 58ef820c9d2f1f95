/**
 * The JSON schemas (draft 2020-12) of the settings' values, as the fleet policy holds them: each
 * setting's entry in settings.ts names one, the policy's schema is built from them
 * (policy/policy-schema.ts), and so is a chart value's where the table gives none. Pure data.
 */
import { DURATION_PATTERN } from './durations.js'

/** A JSON schema. */
export type Schema = Readonly<Record<string, unknown>>

/** A Kubernetes name (DNS-1123 label): a namespace, a pool. */
const LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'

export const TEXT = { type: 'string' } as const
export const NON_EMPTY = { type: 'string', minLength: 1 } as const
export const BOOLEAN = { type: 'boolean' } as const
/** A whole number of at least 1 (a canary, a cap on unschedulable nodes). */
export const COUNT = { type: 'integer', minimum: 1 } as const
export const NAMESPACE = { type: 'string', pattern: LABEL_PATTERN, maxLength: 63 } as const
/** A helm release's name, as helm takes it. */
export const RELEASE_NAME = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 53 } as const
export const DURATION = {
  type: 'string',
  pattern: DURATION_PATTERN,
  description: 'A duration as helm, kubectl and Argo write it (90s, 5m, 1h30m) or a number of seconds; at most 24h.',
} as const
export const BATCH_SIZE = {
  description: 'Nodes per wave, or a percentage of the selected nodes ("25%").',
  anyOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^([1-9][0-9]?|100)%$' },
  ],
} as const

/** One of `choices`. */
export const oneOf = (choices: readonly string[]) => ({ type: 'string', enum: [...choices] }) as const

const NODE_TAINT = {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  properties: { key: NON_EMPTY, value: TEXT },
} as const

export const POD = {
  type: 'object',
  description: 'The verification Pod manifest; ${NODE} and ${TEST_POD} are substituted.',
  required: ['apiVersion', 'kind', 'spec'],
  properties: {
    apiVersion: { enum: ['v1'] },
    kind: { enum: ['Pod'] },
    spec: { type: 'object' },
  },
} as const

/** A node pool: an item of the policy's `pools`, or of a `--pools` file. */
export const POOL = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: {
      type: 'string',
      pattern: LABEL_PATTERN,
      maxLength: 63,
      description: "The pool's name, in messages and the plan.",
    },
    nodeSelector: {
      type: 'string',
      description:
        "Label selector (kubectl syntax) picking the pool's nodes among the selected ones. None: every selected node no earlier pool took.",
    },
    nodeTaint: NODE_TAINT,
    batchSize: BATCH_SIZE,
    canary: { ...COUNT, description: "The pool's first wave's size." },
    verification: {
      type: 'object',
      additionalProperties: false,
      description: "The pool's own verification pod (and timeout); without it, the run's.",
      properties: { timeout: DURATION, pod: POD },
    },
  },
} as const

export const POOLS = { type: 'array', minItems: 1, items: POOL } as const

const CLOCK = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, local.' } as const

/** Maintenance windows, as the policy lists them (gates/window.ts). */
export const WINDOWS = {
  type: 'array',
  minItems: 1,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['start', 'end'],
    properties: {
      days: {
        description: 'Days a window starts on: Mon..Sun, a list or a range ("Mon-Fri"); every day when absent.',
        anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
      },
      start: CLOCK,
      end: CLOCK,
      timeZone: { type: 'string', minLength: 1, description: 'IANA time zone, e.g. Europe/Berlin; default UTC.' },
    },
  },
} as const
