import type { NodeStatus } from './node-state.js'
import type { Phase } from './phase-names.js'

export type { Phase } from './phase-names.js'

/** Typed progress from the domain. The UI maps these to listr2, plain lines, or nothing (--json). */
export type LifecycleEvent =
  | { type: 'info'; message: string }
  | { type: 'warning'; message: string }
  | { type: 'wave-start'; wave: number; waves: number; nodes: string[]; pool?: string }
  | { type: 'phase-start'; wave: number; phase: Phase; nodes: string[] }
  | { type: 'phase-end'; wave: number; phase: Phase; nodes: string[]; failures: { node: string; reason: string }[] }
  | { type: 'node-status'; node: string; status: NodeStatus; message?: string }
  | { type: 'wave-end'; wave: number; passed: string[]; rolledBack: string[]; failed: string[] }
