/**
 * The run record (a Secret, as helm keeps release values: it holds the operator's values, which may
 * carry credentials) and the single-runner lock (a coordination.k8s.io Lease).
 */
import { gunzipSync } from 'node:zlib'
import type { CoordinationV1Api, CoreV1Api, V1Lease, V1Secret, Watch } from '@kubernetes/client-node'
import type {
  Decide,
  HelmRevisionView,
  HelmStorageStore,
  LockAttempt,
  LockInfo,
  LockStore,
  RunRecord,
  RunStore,
  StoredRelease,
  WaitResult,
} from '../ports/cluster.port.js'
import { isNotFound, kubeCall, statusOf, toClusterError } from './kube-errors.js'
import { listInPages } from './kube-list.js'
import { watchUntil, type ListWatchSource } from './kube-watch.js'
import { POLICY_CONFIGMAP, POLICY_KEY } from '../lifecycle/policy/policy.js'

/** helm's release JSON, as far as kata-lcm reads it. */
interface HelmReleaseJson {
  name?: string
  namespace?: string
  version?: number
  info?: { status?: string; first_deployed?: string; last_deployed?: string }
  chart?: { metadata?: { name?: string; version?: string; appVersion?: string } }
}

/**
 * A release from its storage Secret's `release` data: base64 (the Secret's) of base64 of its
 * gzipped JSON, as helm 3 and 4 write it; the fields `helm get metadata` prints. Pure.
 */
export function toStoredRelease(data: string, release: string, namespace: string): StoredRelease {
  const encoded = Buffer.from(Buffer.from(data, 'base64').toString('utf8'), 'base64')
  const json = encoded[0] === 0x1f && encoded[1] === 0x8b ? gunzipSync(encoded) : encoded
  const r = JSON.parse(json.toString('utf8')) as HelmReleaseJson
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined)
  const deployedAt = text(r.info?.last_deployed)
  const firstDeployed = text(r.info?.first_deployed)
  return {
    release: {
      name: r.name ?? release,
      namespace: r.namespace ?? namespace,
      revision: r.version ?? 0,
      status: r.info?.status ?? 'unknown',
      chartName: r.chart?.metadata?.name ?? '',
      chartVersion: r.chart?.metadata?.version ?? '',
      appVersion: r.chart?.metadata?.appVersion ?? '',
      ...(deployedAt ? { deployedAt } : {}),
    },
    ...(firstDeployed ? { firstDeployed } : {}),
  }
}

/** A helm release revision from its storage Secret's labels. Pure. */
export function toHelmRevisionView(secret: V1Secret): HelmRevisionView {
  const labels = secret.metadata?.labels ?? {}
  const seconds = Number(labels.modifiedAt)
  return {
    revision: Number(labels.version ?? 0),
    status: labels.status ?? '',
    ...(Number.isFinite(seconds) && seconds > 0 ? { modifiedAt: new Date(seconds * 1000).toISOString() } : {}),
  }
}

const RUN_KEY = 'run.json'
// Lease spec times are MicroTime, which client-node serializes with millisecond precision and the
// API server refuses; the times live in annotations, the holder and duration in the spec.
const ACQUIRED = 'kata-lcm.katacontainers.io/acquired-at'
const RENEWED = 'kata-lcm.katacontainers.io/renewed-at'
/** The client limits the holder's last process reached, for its next one (kube-limit.ts). */
export const HANDED_LIMITS = 'kata-lcm.katacontainers.io/client-limits'

/** A lock taken, with what the holder's earlier process left on the lease for it. */
export type HeldAttempt = { acquired: true; handedLimits?: string } | Extract<LockAttempt, { acquired: false }>

const RUN_SECRET_TYPE = 'kata-lcm.katacontainers.io/run-record'

function runRecordName(release: string): string {
  return `kata-lcm-run-${release}`.slice(0, 253)
}

function lockInfo(lease: V1Lease): LockInfo {
  const a = lease.metadata?.annotations ?? {}
  return {
    holder: lease.spec?.holderIdentity ?? '',
    acquiredAt: a[ACQUIRED] ?? '',
    renewedAt: a[RENEWED] ?? a[ACQUIRED] ?? '',
    ttlSeconds: lease.spec?.leaseDurationSeconds ?? 0,
  }
}

function expired(info: LockInfo, now: Date): boolean {
  return (
    info.holder === '' ||
    Date.parse(info.renewedAt) + info.ttlSeconds * 1000 < now.getTime() ||
    Number.isNaN(Date.parse(info.renewedAt))
  )
}

/**
 * Secrets and Leases through core/v1 and coordination/v1. Writes use resourceVersion preconditions.
 * Handing the lock over is KubeCluster's (it knows the client's limits): `renewLock` with annotations.
 */
export class KubeState implements RunStore, Omit<LockStore, 'handOverLock'>, HelmStorageStore {
  constructor(
    private readonly core: CoreV1Api,
    private readonly coordination: CoordinationV1Api,
    private readonly watch: Watch,
  ) {}

  /** The Secrets of `namespace` that `selector` picks, to list and watch (`what` names them in errors). */
  private secretSource(
    namespace: string,
    what: string,
    selector: { labelSelector?: string; fieldSelector?: string },
  ): ListWatchSource<V1Secret> {
    return {
      what,
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
      ...selector,
      permission: { resource: 'secrets', namespace },
      list: (each) =>
        listInPages(
          (page) =>
            kubeCall(`list ${what}`, { verb: 'list', resource: 'secrets', namespace }, () =>
              this.core.listNamespacedSecret({ namespace, ...selector, ...page }),
            ),
          each,
        ),
    }
  }

  /**
   * helm's storage Secret of the release's newest revision (`owner=helm,name=<release>`, the highest
   * `version` label), decoded as helm encodes it (base64 of its gzipped JSON).
   */
  async helmStoredRelease(namespace: string, release: string): Promise<StoredRelease | undefined> {
    const list = await kubeCall(
      `list secrets ${namespace} owner=helm,name=${release}`,
      { verb: 'list', resource: 'secrets', namespace },
      () => this.core.listNamespacedSecret({ namespace, labelSelector: `owner=helm,name=${release}` }),
    )
    const newest = list.items
      .filter((s) => s.data?.release)
      .sort((a, b) => Number(b.metadata?.labels?.version ?? 0) - Number(a.metadata?.labels?.version ?? 0))[0]
    return newest ? toStoredRelease(newest.data!.release!, release, namespace) : undefined
  }

  /** Read-only; a watch on helm's storage Secrets (`owner=helm,name=<release>`), never a poll. */
  waitForHelmRevisions<T>(
    namespace: string,
    release: string,
    decide: Decide<HelmRevisionView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, HelmRevisionView[]>> {
    const source = this.secretSource(namespace, `helm's revisions of ${namespace}/${release}`, {
      labelSelector: `owner=helm,name=${release}`,
    })
    return watchUntil(this.watch, source, toHelmRevisionView, decide, timeoutMs, signal)
  }

  /**
   * Read-only; undefined when there is no record (or it does not parse). kata-lcm 0.1 kept the record
   * in a ConfigMap of the same name: read there when no Secret exists, so an interrupted run resumes.
   */
  async readRun(namespace: string, release: string): Promise<RunRecord | undefined> {
    const name = runRecordName(release)
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name })
      const data = secret.data?.[RUN_KEY]
      return data ? (JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as RunRecord) : undefined
    } catch (error) {
      if (!isNotFound(error))
        throw toClusterError(`get secret ${namespace}/${name}`, error, { verb: 'get', resource: 'secrets', namespace })
    }
    try {
      const legacy = await this.core.readNamespacedConfigMap({ namespace, name })
      const text = legacy.data?.[RUN_KEY]
      return text ? (JSON.parse(text) as RunRecord) : undefined
    } catch (error) {
      // Not found, or no right to read ConfigMaps: there is no legacy record to resume.
      if (isNotFound(error) || statusOf(error) === 403) return undefined
      throw toClusterError(`get configmap ${namespace}/${name}`, error, {
        verb: 'get',
        resource: 'configmaps',
        namespace,
      })
    }
  }

  /** Read-only; a watch on the record's Secret (by name), never a poll. */
  async waitForRun<T>(
    namespace: string,
    release: string,
    decide: (record: RunRecord | undefined) => T | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, RunRecord | undefined>> {
    const name = runRecordName(release)
    const source = this.secretSource(namespace, `the run record ${namespace}/${name}`, {
      fieldSelector: `metadata.name=${name}`,
    })
    const toRecord = (secret: V1Secret): RunRecord | undefined => {
      const data = secret.data?.[RUN_KEY]
      return data ? (JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as RunRecord) : undefined
    }
    const result = await watchUntil(this.watch, source, toRecord, (records) => decide(records[0]), timeoutMs, signal)
    return result.done ? result : { done: false, last: result.last[0] }
  }

  /** Read-only: the policy ConfigMap's document, undefined when there is none. */
  async readPolicy(namespace: string): Promise<string | undefined> {
    try {
      const map = await this.core.readNamespacedConfigMap({ namespace, name: POLICY_CONFIGMAP })
      return map.data?.[POLICY_KEY]
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw toClusterError(`get configmap ${namespace}/${POLICY_CONFIGMAP}`, error, {
        verb: 'get',
        resource: 'configmaps',
        namespace,
      })
    }
  }

  /** Create, or replace when it exists. */
  async writePolicy(namespace: string, text: string): Promise<void> {
    const body = {
      metadata: {
        name: POLICY_CONFIGMAP,
        namespace,
        labels: { 'app.kubernetes.io/managed-by': 'kata-lcm' },
      },
      data: { [POLICY_KEY]: text },
    }
    await createOrReplace(
      'configmaps',
      namespace,
      POLICY_CONFIGMAP,
      () => this.core.createNamespacedConfigMap({ namespace, body }),
      () => this.core.replaceNamespacedConfigMap({ namespace, name: POLICY_CONFIGMAP, body }),
    )
  }

  /** Create, or replace on conflict. Idempotent. */
  async writeRun(record: RunRecord): Promise<void> {
    const namespace = record.namespace
    const body = {
      metadata: {
        name: runRecordName(record.release),
        namespace,
        labels: { 'app.kubernetes.io/managed-by': 'kata-lcm' },
      },
      type: RUN_SECRET_TYPE,
      data: { [RUN_KEY]: Buffer.from(JSON.stringify(record, null, 2)).toString('base64') },
    }
    await createOrReplace(
      'secrets',
      namespace,
      body.metadata.name,
      () => this.core.createNamespacedSecret({ namespace, body }),
      () => this.core.replaceNamespacedSecret({ namespace, name: body.metadata.name, body }),
    )
  }

  /** Deletes the record (and a legacy ConfigMap record). Idempotent. */
  async clearRun(namespace: string, release: string): Promise<void> {
    const name = runRecordName(release)
    try {
      await this.core.deleteNamespacedSecret({ namespace, name })
    } catch (error) {
      if (!isNotFound(error))
        throw toClusterError(`delete secret ${namespace}/${name}`, error, {
          verb: 'delete',
          resource: 'secrets',
          namespace,
        })
    }
    await this.core.deleteNamespacedConfigMap({ namespace, name }).catch(() => undefined)
  }

  private async readLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    try {
      return await this.coordination.readNamespacedLease({ namespace, name })
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw toClusterError(`get lease ${namespace}/${name}`, error, {
        verb: 'get',
        resource: 'leases.coordination.k8s.io',
        namespace,
      })
    }
  }

  /** Never steals a live lease: takeovers and renewals carry the resourceVersion read (409 = lost the race). */
  async tryLock(namespace: string, name: string, holder: string, ttlSeconds: number, now: Date): Promise<HeldAttempt> {
    const stamp = now.toISOString()
    const current = await this.readLease(namespace, name)
    if (!current) {
      try {
        await this.coordination.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace, annotations: { [ACQUIRED]: stamp, [RENEWED]: stamp } },
            spec: { holderIdentity: holder, leaseDurationSeconds: ttlSeconds },
          },
        })
        return { acquired: true }
      } catch (error) {
        if (statusOf(error) !== 409)
          throw toClusterError(`create lease ${namespace}/${name}`, error, {
            verb: 'create',
            resource: 'leases.coordination.k8s.io',
            namespace,
          })
        // 409 after a retried create can be our own first attempt, whose response was lost.
        const winner = await this.readLease(namespace, name)
        if (winner && lockInfo(winner).holder === holder) return { acquired: true }
        return winner
          ? { acquired: false, current: lockInfo(winner) }
          : { acquired: false, current: { holder: 'unknown', acquiredAt: stamp, renewedAt: stamp, ttlSeconds } }
      }
    }
    const info = lockInfo(current)
    if (info.holder !== holder && !expired(info, now)) return { acquired: false, current: info }
    const acquiredAt = info.holder === holder ? info.acquiredAt || stamp : stamp
    const body: V1Lease = {
      ...current,
      metadata: {
        ...current.metadata,
        annotations: { ...current.metadata?.annotations, [ACQUIRED]: acquiredAt, [RENEWED]: stamp },
      },
      spec: { ...current.spec, holderIdentity: holder, leaseDurationSeconds: ttlSeconds },
    }
    // The same holder's next process (an Argo step after the last): what the last one left for it.
    const handedLimits = info.holder === holder ? current.metadata?.annotations?.[HANDED_LIMITS] : undefined
    try {
      await this.coordination.replaceNamespacedLease({ namespace, name, body })
      return { acquired: true, ...(handedLimits ? { handedLimits } : {}) }
    } catch (error) {
      if (statusOf(error) !== 409)
        throw toClusterError(`update lease ${namespace}/${name}`, error, {
          verb: 'update',
          resource: 'leases.coordination.k8s.io',
          namespace,
        })
      const winner = await this.readLease(namespace, name)
      if (winner && lockInfo(winner).holder === holder) return { acquired: true }
      return { acquired: false, current: winner ? lockInfo(winner) : info }
    }
  }

  /** Renews the lease while `holder` holds it, with `annotations` added (what it hands its next process). */
  async renewLock(
    namespace: string,
    name: string,
    holder: string,
    now: Date,
    annotations: Record<string, string> = {},
  ): Promise<boolean> {
    const current = await this.readLease(namespace, name)
    if (!current || lockInfo(current).holder !== holder) return false
    const body: V1Lease = {
      ...current,
      metadata: {
        ...current.metadata,
        annotations: { ...current.metadata?.annotations, ...annotations, [RENEWED]: now.toISOString() },
      },
    }
    try {
      await this.coordination.replaceNamespacedLease({ namespace, name, body })
      return true
    } catch (error) {
      if (statusOf(error) === 409) return this.renewLock(namespace, name, holder, now, annotations)
      throw toClusterError(`update lease ${namespace}/${name}`, error, {
        verb: 'update',
        resource: 'leases.coordination.k8s.io',
        namespace,
      })
    }
  }

  async unlock(namespace: string, name: string, holder?: string): Promise<LockInfo | undefined> {
    const current = await this.readLease(namespace, name)
    if (!current) return undefined
    const info = lockInfo(current)
    if (holder !== undefined && info.holder !== holder) return info
    try {
      await this.coordination.deleteNamespacedLease({
        namespace,
        name,
        body: { preconditions: { resourceVersion: current.metadata?.resourceVersion } },
      })
    } catch (error) {
      if (!isNotFound(error) && statusOf(error) !== 409)
        throw toClusterError(`delete lease ${namespace}/${name}`, error, {
          verb: 'delete',
          resource: 'leases.coordination.k8s.io',
          namespace,
        })
    }
    return info
  }
}

/** Creates the object, or replaces it when it exists (409 on create). */
async function createOrReplace(
  resource: 'configmaps' | 'secrets',
  namespace: string,
  name: string,
  create: () => Promise<unknown>,
  replace: () => Promise<unknown>,
): Promise<void> {
  const kind = resource.slice(0, -1)
  try {
    await create()
  } catch (error) {
    if (statusOf(error) !== 409)
      throw toClusterError(`create ${kind} ${namespace}/${name}`, error, { verb: 'create', resource, namespace })
    await kubeCall(`replace ${kind} ${namespace}/${name}`, { verb: 'update', resource, namespace }, replace)
  }
}
