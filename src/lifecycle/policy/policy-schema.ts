/**
 * The fleet policy's JSON schema (draft 2020-12): the one definition `parsePolicy` validates against
 * and `kata-lcm policy schema` prints (for editors: yaml-language-server's `$schema`).
 */
import { DURATION_PATTERN } from '../settings/durations.js'
import { DEPLOYMENT_MODES } from '../modes/index.js'

const DURATION = {
  type: 'string',
  pattern: DURATION_PATTERN,
  description: 'A duration as helm, kubectl and Argo write it (90s, 5m, 1h30m) or a number of seconds; at most 24h.',
} as const
const NODE_TAINT = {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  properties: {
    key: {
      type: 'string',
      minLength: 1,
    },
    value: {
      type: 'string',
    },
  },
} as const
const BATCH_SIZE = {
  description: '--batch-size: nodes per wave, or a percentage of the selected nodes ("25%").',
  anyOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^([1-9][0-9]?|100)%$' },
  ],
} as const
const POD = {
  type: 'object',
  description: 'The verification Pod manifest; ${NODE} and ${TEST_POD} are substituted.',
  required: ['apiVersion', 'kind', 'spec'],
  properties: {
    apiVersion: {
      enum: ['v1'],
    },
    kind: {
      enum: ['Pod'],
    },
    spec: {
      type: 'object',
    },
  },
} as const

/** A node pool: an item of the policy's `pools`, or of a `--pools` file. */
export const POOL_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: {
      type: 'string',
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
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
    canary: { type: 'integer', minimum: 1, description: "The pool's first wave's size." },
    verification: {
      type: 'object',
      additionalProperties: false,
      description: "The pool's own verification pod (and timeout); without it, the run's.",
      properties: {
        timeout: DURATION,
        pod: POD,
      },
    },
  },
} as const

export const POLICY_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://github.com/kata-containers/kata-lcm/schema/policy.schema.json',
  title: 'kata-lcm fleet policy',
  description:
    "The fleet's defaults for kata-lcm upgrade, rollback, status and install-workflow. Flags override each field.",
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind'],
  properties: {
    apiVersion: {
      enum: ['kata-lcm.katacontainers.io/v1alpha1'],
    },
    kind: {
      enum: ['Policy'],
    },
    release: {
      type: 'object',
      additionalProperties: false,
      description: 'The kata-deploy helm release (--helm-release, --helm-namespace).',
      properties: {
        name: {
          type: 'string',
          pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
          maxLength: 53,
        },
        namespace: {
          type: 'string',
          pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
          maxLength: 63,
        },
      },
    },
    chart: {
      type: 'string',
      minLength: 1,
      description: '--chart: OCI reference, repo/chart, directory or .tgz.',
    },
    previousChart: {
      type: 'string',
      minLength: 1,
      description: '--previous-chart.',
    },
    nodeSelector: {
      type: 'string',
      description: '--node-selector, kubectl syntax.',
    },
    nodeTaint: NODE_TAINT,
    batchSize: BATCH_SIZE,
    canary: { type: 'integer', minimum: 1, description: "--canary: the first wave's size." },
    pools: {
      type: 'array',
      minItems: 1,
      description:
        '--pools: named node pools, upgraded in this order, each with its own verification pod; every selected node must fall in one.',
      items: POOL_SCHEMA,
    },
    maxUnavailable: {
      type: 'integer',
      minimum: 1,
      description:
        '--max-unavailable: at most this many selected nodes unschedulable at once across pools, counting those already cordoned.',
    },
    windows: {
      type: 'array',
      minItems: 1,
      description:
        '--window: maintenance windows; a wave starts only inside one (a wave in progress finishes). An end not after the start crosses midnight.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['start', 'end'],
        properties: {
          days: {
            description: 'Days a window starts on: Mon..Sun, a list or a range ("Mon-Fri"); every day when absent.',
            anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
          },
          start: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, local.' },
          end: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, local.' },
          timeZone: { type: 'string', minLength: 1, description: 'IANA time zone, e.g. Europe/Berlin; default UTC.' },
        },
      },
    },
    soak: {
      ...DURATION,
      description: '--soak: after each wave but the last, its time in service before the re-check.',
    },
    deploymentMode: {
      enum: ['auto', ...DEPLOYMENT_MODES],
    },
    alerts: {
      type: 'object',
      additionalProperties: false,
      properties: {
        url: {
          type: 'string',
          pattern: '^https?://',
          description: '--alert-url: a Prometheus API; before each wave its matching firing alerts hold the run.',
        },
        match: {
          type: 'string',
          description: '--alert-match: Prometheus label matchers, comma-separated; empty: every firing alert.',
        },
        timeout: {
          ...DURATION,
          description: '--alert-timeout: how long alerts may hold one wave before the run stops.',
        },
      },
    },
    workloads: {
      type: 'object',
      additionalProperties: false,
      properties: {
        onDisruption: {
          enum: ['report', 'stop'],
          description:
            "--on-workload-disruption: a Kata pod that restarted, died or vanished during its node's upgrade is named (report); stop also stops the run before the next wave.",
        },
      },
    },
    drain: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: {
          type: 'boolean',
        },
        timeout: DURATION,
        force: {
          type: 'boolean',
        },
        deleteEmptyDirData: {
          type: 'boolean',
        },
      },
    },
    timeouts: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ready: DURATION,
        helm: DURATION,
      },
    },
    verification: {
      type: 'object',
      additionalProperties: false,
      properties: {
        namespace: {
          type: 'string',
          pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
          maxLength: 63,
        },
        timeout: DURATION,
        pod: POD,
      },
    },
  },
} as const
