/**
 * Where the Kubernetes connection comes from, and the user agent every request carries so the
 * API server's audit log attributes kata-lcm's writes to kata-lcm (not to "node-fetch").
 */
import { createRequire } from 'node:module'
import { KubeConfig } from '@kubernetes/client-node'
import type { RequestContext } from '@kubernetes/client-node'
import { InputError } from '../lifecycle/errors.js'

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
  } catch (error) {
    throw new InputError('--kubeconfig', `cannot load ${options.kubeconfig ?? 'the default kubeconfig'}: ${(error as Error).message}`, { cause: error })
  }
  if (options.context) {
    if (!kc.getContexts().some((c) => c.name === options.context)) {
      const known = kc.getContexts().map((c) => c.name).join(', ') || 'none'
      throw new InputError('--context', `no context "${options.context}" in the kubeconfig (known: ${known})`)
    }
    kc.setCurrentContext(options.context)
  }
  // loadFromDefault() silently falls back to http://localhost:8080 when it finds nothing at all;
  // saying so here beats a confusing "HTTP protocol is not allowed" on the first request.
  if (kc.getCurrentCluster()?.server === 'http://localhost:8080' && kc.getCurrentContext() === 'loaded-context') {
    throw new InputError('--kubeconfig', 'no kubeconfig found (KUBECONFIG, ~/.kube/config) and not running in a cluster', {
      suggestions: ['pass --kubeconfig PATH or set KUBECONFIG'],
    })
  }
  return kc
}

/** `kata-lcm/<package version>`; never throws (falls back to `kata-lcm/unknown`). */
export function defaultUserAgent(): string {
  try {
    // Same relative path from src/adapters (tsx, vitest) and dist/adapters (the built CLI).
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: string }
    return `kata-lcm/${pkg.version ?? 'unknown'}`
  } catch {
    return 'kata-lcm/unknown'
  }
}

/**
 * A view of `kc` whose API clients (via makeApiClient) and watches (via applyToFetchOptions) send
 * `User-Agent: userAgent` and share keep-alive connections. The original KubeConfig is not modified.
 * client-node has no user-agent option, so this overrides the two public hooks every request goes
 * through; all other state and methods are inherited from `kc` through the prototype, so credential
 * refresh keeps working.
 */
export function withUserAgent(kc: KubeConfig, userAgent: string): KubeConfig {
  const tagged = Object.create(kc) as KubeConfig
  const applySecurity = kc.applySecurityAuthentication
  const applyFetch = kc.applyToFetchOptions
  tagged.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    await applySecurity.call(tagged, context)
    context.setHeaderParam('User-Agent', userAgent)
  }
  // Watch copies opts.headers into the request it sends.
  tagged.applyToFetchOptions = (opts) => applyFetch.call(tagged, { ...opts, headers: { ...opts.headers, 'User-Agent': userAgent } })
  shareAgents(tagged, kc)
  return tagged
}

type AgentFactory = (cluster: unknown, options: Record<string, unknown>) => unknown

/**
 * client-node builds a new https.Agent for every request, so every call pays a TLS handshake (the
 * benchmark's CPU profile: TLS setup was the largest cost after idle). Reuse one keep-alive agent per
 * distinct set of connection options; new credentials (a rotated client certificate) get a new one.
 */
function shareAgents(tagged: KubeConfig, kc: KubeConfig): void {
  const create = (kc as unknown as { createAgent?: AgentFactory }).createAgent
  if (typeof create !== 'function') return
  const agents = new Map<string, unknown>()
  const text = (value: unknown) => (Buffer.isBuffer(value) ? value.toString('base64') : value === undefined ? '' : String(value))
  ;(tagged as unknown as { createAgent: AgentFactory }).createAgent = (cluster, options) => {
    const c = cluster as { server?: string; proxyUrl?: string } | undefined
    const key = JSON.stringify([c?.server, c?.proxyUrl, options.rejectUnauthorized, options.servername, text(options.ca), text(options.cert), text(options.key), text(options.pfx)])
    let agent = agents.get(key)
    if (agent === undefined) {
      agent = create.call(kc, cluster, { ...options, keepAlive: true })
      agents.set(key, agent)
    }
    return agent
  }
}
