/**
 * One error hierarchy for the whole tool. Every error carries a stable `code`, an exit code from
 * the documented table (docs/exit-codes.md) and suggestions; the base command turns it into one line.
 */

/** Exit codes, documented in README.md and docs/exit-codes.md. */
export const ExitCode = {
  /** Every selected node is on the target version (or there was nothing to do). */
  Success: 0,
  /** An unexpected error; nothing is known to be left half-done. */
  Unexpected: 1,
  /** Bad input: a flag, a file or a precondition is wrong. Nothing was written to the cluster. */
  BadInput: 2,
  /**
   * The run stopped before the next wave: a node failed and was rolled back, or (`stop` on a workload
   * disruption) a node's running Kata pods did not come through. The cluster is consistent.
   */
  RolledBack: 3,
  /** A node failed and could not be put back: it stays cordoned and annotated `failed`. Act by hand. */
  ManualActionNeeded: 4,
  /** Another kata-lcm run holds the lock. Nothing was written. */
  Locked: 5,
  /** Interrupted by a signal at a safe point; rerun the same command to resume. */
  Interrupted: 6,
  /** The cluster or helm could not be reached or refused a read before any write. */
  ClusterUnavailable: 7,
  /** Every wave ran, but node(s) were deleted mid-run: named in the report, not upgraded. */
  NodesGone: 8,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export interface KataLcmErrorOptions {
  cause?: unknown
  suggestions?: string[]
}

export class KataLcmError extends Error {
  readonly code: string = 'KATA_LCM_ERROR'
  readonly exitCode: ExitCode = ExitCode.Unexpected
  readonly suggestions: string[]

  constructor(message: string, options: KataLcmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.suggestions = options.suggestions ?? []
  }
}

/** A flag, field or file is wrong. `field` names it (e.g. `--batch-size`, `spec.tolerations`). */
export class InputError extends KataLcmError {
  override readonly code = 'BAD_INPUT'
  override readonly exitCode = ExitCode.BadInput
  constructor(
    readonly field: string,
    message: string,
    options: KataLcmErrorOptions = {},
  ) {
    super(`${field}: ${message}`, options)
  }
}

/** The cluster is not in a state the command can start from (missing release, wrong mode, ...). */
export class PreconditionError extends KataLcmError {
  override readonly code = 'PRECONDITION'
  override readonly exitCode = ExitCode.BadInput
}

/** The API server failed or refused a call. */
export class ClusterError extends KataLcmError {
  override readonly code = 'CLUSTER'
  override readonly exitCode: ExitCode = ExitCode.ClusterUnavailable
  constructor(
    message: string,
    readonly status?: number,
    options: KataLcmErrorOptions = {},
  ) {
    super(message, options)
  }
}

/** helm exited non-zero. Carries argv, exit code and the tail of stderr. */
export class HelmError extends KataLcmError {
  override readonly code = 'HELM'
  override readonly exitCode: ExitCode = ExitCode.ClusterUnavailable
  constructor(
    message: string,
    readonly argv: string[],
    readonly helmExitCode: number | undefined,
    readonly stderrTail: string,
    options: KataLcmErrorOptions = {},
  ) {
    super(message, options)
  }
}

/** A watch ran out of time. */
export class TimeoutError extends KataLcmError {
  override readonly code = 'TIMEOUT'
}

/** A node failed its upgrade and was rolled back. */
export class NodesRolledBackError extends KataLcmError {
  override readonly code = 'ROLLED_BACK'
  override readonly exitCode = ExitCode.RolledBack
}

/** Kata pods running on a wave's nodes did not come through their upgrade, and the run stops on that. */
export class WorkloadsDisruptedError extends KataLcmError {
  override readonly code = 'WORKLOADS_DISRUPTED'
  override readonly exitCode = ExitCode.RolledBack
}

/** A node could not be rolled back: manual action needed. */
export class ManualActionError extends KataLcmError {
  override readonly code = 'MANUAL_ACTION'
  override readonly exitCode = ExitCode.ManualActionNeeded
}

/** Another run holds the single-runner lock. */
export class LockedError extends KataLcmError {
  override readonly code = 'LOCKED'
  override readonly exitCode = ExitCode.Locked
}

/** Short text of any thrown value, for reports and annotations. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}
