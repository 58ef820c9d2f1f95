/**
 * Where the Kubernetes connection comes from, and the user agent every request carries so the
 * API server's audit log attributes kata-lcm's writes to kata-lcm (not to "node-fetch").
 */
import createDebug from 'debug'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { createConfiguration, KubeConfig, ServerConfiguration, setHeaderMiddleware } from '@kubernetes/client-node'
import type { ApiConstructor, ApiType, RequestContext } from '@kubernetes/client-node'
import { InputError } from '../lifecycle/errors.js'

const debug = createDebug('kata-lcm:kube')

/** The --kubeconfig / --context flags. */
export interface KubeConfigOptions {
  /** Path to a kubeconfig file; wins over KUBECONFIG and ~/.kube/config. */
  kubeconfig?: string
  /** A context of that kubeconfig; default: its current-context. */
  context?: string
}

/**
 * Loads the connection: `kubeconfig` when given, else KUBECONFIG / ~/.kube/config, else the
 * in-cluster service account (an Argo step). Read-only; throws an InputError naming the flag
 * when the file or the context does not exist.
 */
export function createKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig()
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig)
    else kc.loadFromDefault()
    honourTokenFiles(
      kc,
      options.kubeconfig
        ? [options.kubeconfig]
        : (process.env.KUBECONFIG ?? path.join(homedir(), '.kube', 'config')).split(path.delimiter),
    )
  } catch (error) {
    throw new InputError(
      '--kubeconfig',
      `cannot load ${options.kubeconfig ?? 'the default kubeconfig'}: ${(error as Error).message}`,
      { cause: error },
    )
  }
  if (options.context) {
    if (!kc.getContexts().some((c) => c.name === options.context)) {
      const known =
        kc
          .getContexts()
          .map((c) => c.name)
          .join(', ') || 'none'
      throw new InputError('--context', `no context "${options.context}" in the kubeconfig (known: ${known})`)
    }
    kc.setCurrentContext(options.context)
  }
  // loadFromDefault() silently falls back to http://localhost:8080 when it finds nothing at all;
  // saying so here beats a confusing "HTTP protocol is not allowed" on the first request.
  if (kc.getCurrentCluster()?.server === 'http://localhost:8080' && kc.getCurrentContext() === 'loaded-context') {
    throw new InputError(
      '--kubeconfig',
      'no kubeconfig found (KUBECONFIG, ~/.kube/config) and not running in a cluster',
      {
        suggestions: ['pass --kubeconfig PATH or set KUBECONFIG'],
      },
    )
  }
  return kc
}

/**
 * kubectl's kubeconfig names a token file `tokenFile`; client-node reads only `token-file`, so such
 * a user would silently go anonymous. Give those users client-node's refreshing token-file
 * authenticator (the one it uses in a pod), which rereads the file as it rotates.
 */
function honourTokenFiles(kc: KubeConfig, files: string[]): void {
  const tokenFiles = new Map<string, string>()
  for (const file of files) {
    if (!file || !existsSync(file)) continue
    const doc = parse(readFileSync(file, 'utf8')) as {
      users?: { name?: string; user?: { tokenFile?: unknown } }[]
    } | null
    for (const u of doc?.users ?? [])
      if (u.name && typeof u.user?.tokenFile === 'string' && !tokenFiles.has(u.name))
        tokenFiles.set(u.name, u.user.tokenFile)
  }
  if (tokenFiles.size === 0) return
  kc.users = kc.users.map((u) => {
    const tokenFile = tokenFiles.get(u.name)
    return tokenFile && !u.token && !u.authProvider && !u.exec
      ? { ...u, authProvider: { name: 'tokenFile', config: { tokenFile } } }
      : u
  })
}

/** `kata-lcm/<package version>`; never throws (falls back to `kata-lcm/unknown`). */
export function defaultUserAgent(): string {
  try {
    // The nearest kata-lcm package.json above this module: src/adapters (tsx, vitest), or
    // dist/chunks (the bundled CLI, scripts/build.mjs).
    const require = createRequire(import.meta.url)
    for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
      const file = path.join(dir, 'package.json')
      if (existsSync(file)) {
        const pkg = require(file) as { name?: string; version?: string }
        if (pkg.name === 'kata-lcm') return `kata-lcm/${pkg.version ?? 'unknown'}`
      }
      if (path.dirname(dir) === dir) return 'kata-lcm/unknown'
    }
  } catch {
    return 'kata-lcm/unknown'
  }
}

/**
 * A view of `kc` whose API clients (makeApiClient) and watches send `User-Agent: userAgent`, share
 * keep-alive connections and name each request under DEBUG=kata-lcm:kube. The original KubeConfig
 * is not modified. client-node has no user-agent option: its API clients set their own in a
 * middleware (so makeApiClient is rebuilt with ours), and a watch takes its headers from
 * `applySecurityAuthentication`. All other state and methods are
 * inherited from `kc` through the prototype, so credential refresh (exec, token files) keeps working.
 */
export function withUserAgent(kc: KubeConfig, userAgent: string): KubeConfig {
  const tagged = Object.create(kc) as KubeConfig
  const applySecurity = kc.applySecurityAuthentication
  tagged.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    // Every request passes here once, API call or watch (and each retry): DEBUG=kata-lcm:kube lists them.
    debug('%s %s', context.getHttpMethod(), context.getUrl())
    await applySecurity.call(tagged, context)
    context.setHeaderParam('User-Agent', userAgent)
  }
  tagged.makeApiClient = <T extends ApiType>(api: ApiConstructor<T>): T => {
    const server = tagged.getCurrentCluster()?.server
    if (!server) throw new Error('No active cluster!')
    return new api(
      createConfiguration({
        baseServer: new ServerConfiguration(server, {}),
        authMethods: { default: tagged },
        middleware: [setHeaderMiddleware('User-Agent', userAgent)],
      }),
    )
  }
  shareDispatchers(tagged, kc)
  return tagged
}

type DispatcherFactory = (cluster: unknown, options: Record<string, unknown>) => unknown

/**
 * client-node 2.x builds a new undici Agent (a new connection pool) in every
 * `applySecurityAuthentication`, so every call would pay a TCP and TLS handshake. Reuse one
 * dispatcher per distinct set of connection options (`createDispatcherOptions`, public); new
 * credentials (a rotated client certificate) give a new key and so a new pool.
 */
function shareDispatchers(tagged: KubeConfig, kc: KubeConfig): void {
  const create = (kc as unknown as { createDispatcher?: DispatcherFactory }).createDispatcher
  if (typeof create !== 'function') return
  const pools = new Map<string, unknown>()
  ;(tagged as unknown as { createDispatcher: DispatcherFactory }).createDispatcher = (cluster, options) => {
    const c = cluster as { server?: string } | null
    const key = keyText([c?.server, kc.createDispatcherOptions(cluster as never, options)])
    if (!pools.has(key)) pools.set(key, create.call(kc, cluster, options))
    return pools.get(key)
  }
}

/**
 * A text equal for equal options: a Buffer (a CA, a client key) as its base64, everything else as
 * JSON. Every request makes one; JSON.stringify would first turn each Buffer into an array of its
 * bytes as numbers, at twice the time (11 µs against 5 µs a request with a CA, a certificate and a
 * key). Pure.
 */
export function keyText(value: unknown): string {
  if (Buffer.isBuffer(value)) return `b64:${value.toString('base64')}`
  if (Array.isArray(value)) return `[${value.map(keyText).join(',')}]`
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}:${keyText(v)}`)
      .join(',')}}`
  return JSON.stringify(value) ?? 'undefined'
}
