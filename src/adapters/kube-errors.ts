/** Turning client-node failures into ClusterErrors that say which call failed and what to do. */
import { ApiException } from '@kubernetes/client-node'
import { ClusterError } from '../lifecycle/errors.js'

/** What RBAC must allow for a call, named in the 403 suggestion. */
export interface Permission {
  verb: string
  /** e.g. `nodes`, `pods/eviction`, `daemonsets.apps`. */
  resource: string
  namespace?: string
}

/** The HTTP status of a client-node failure (API call or watch), or undefined for network errors. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code
  if (error instanceof ClusterError) return error.status
  const e = error as { code?: unknown; statusCode?: unknown } | undefined
  if (typeof e?.statusCode === 'number') return e.statusCode
  if (typeof e?.code === 'number') return e.code
  return undefined
}

/** The server's Status message from an ApiException body (a JSON string or an object). */
export function serverMessage(error: unknown): string | undefined {
  if (!(error instanceof ApiException)) return undefined
  let body: unknown = error.body
  if (typeof body === 'string') {
    const text = body
    try {
      body = JSON.parse(text)
    } catch {
      return text.trim().slice(0, 500) || undefined
    }
  }
  const message = (body as { message?: unknown } | undefined)?.message
  return typeof message === 'string' ? message : undefined
}

/** The network error code (ECONNRESET, ...) anywhere in the cause chain. */
export function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

/**
 * A network failure's message with its cause: undici's fetch says only "fetch failed" and keeps the
 * reason ("connect ECONNREFUSED 127.0.0.1:6443") in `cause`. Pure.
 */
export function networkMessage(error: unknown): string {
  const outer = (error as Error | undefined)?.message ?? String(error)
  let inner: unknown = (error as { cause?: unknown } | undefined)?.cause
  for (let depth = 0; (inner as { cause?: unknown } | undefined)?.cause && depth < 5; depth++)
    inner = (inner as { cause?: unknown }).cause
  const reason = (inner as Error | undefined)?.message
  return reason && !outer.includes(reason) ? `${outer}: ${reason}` : outer
}

/**
 * Wraps any failure of `call` into a ClusterError carrying the HTTP status, the server's message
 * and a suggestion (RBAC for 403, reachability for network errors). Pure; never throws.
 */
export function toClusterError(call: string, error: unknown, permission?: Permission): ClusterError {
  if (error instanceof ClusterError) return error
  const status = statusOf(error)
  const suggestions: string[] = []
  let detail: string
  if (status !== undefined) {
    detail = `HTTP ${status}${serverMessage(error) ? `: ${serverMessage(error)}` : ''}`
    if (status === 403 && permission) {
      const where = permission.namespace ? ` in namespace ${permission.namespace}` : ''
      suggestions.push(
        `RBAC must allow verb "${permission.verb}" on "${permission.resource}"${where} for this identity (kubectl auth can-i ${permission.verb} ${permission.resource}${permission.namespace ? ` -n ${permission.namespace}` : ''})`,
      )
    } else if (status === 401) {
      suggestions.push('the credentials were rejected: check --kubeconfig/--context or refresh the token')
    }
  } else {
    const code = networkCode(error)
    detail = networkMessage(error)
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EHOSTUNREACH' ||
      code === 'ETIMEDOUT' ||
      code === 'ECONNRESET'
    ) {
      suggestions.push('is the API server reachable? check --kubeconfig/--context')
    }
  }
  suggestions.push('run with DEBUG=kata-lcm* for the requests made')
  return new ClusterError(`${call} failed: ${detail}`, status, { cause: error, suggestions })
}

/** Runs one API call; any failure is rethrown as a ClusterError from toClusterError. */
export async function kubeCall<T>(call: string, permission: Permission, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    throw toClusterError(call, error, permission)
  }
}

/** True for a 404 from the API server. */
export function isNotFound(error: unknown): boolean {
  return statusOf(error) === 404
}

/** A ClusterError for an object that must exist and does not (status 404). Pure. */
export function notFoundError(call: string, what: string): ClusterError {
  return new ClusterError(`${call} failed: HTTP 404: ${what} not found`, 404)
}
