/**
 * A fault-injecting proxy between kata-lcm and the API server: plain HTTP on 127.0.0.1 in front, the
 * real API server (TLS, client certificate) behind. A seeded fraction of kata-lcm's requests get a
 * fault: 500, 429 with Retry-After, a reset connection before forwarding, or the request forwarded
 * and its response dropped (so a retried write meets its own first attempt). Other clients (helm,
 * the test harness) pass through untouched.
 */
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { parse } from 'yaml'

export type Fault = '500' | '429' | 'reset' | 'drop-response'
const FAULTS: Fault[] = ['500', '429', 'reset', 'drop-response']
/**
 * What `plan` may ask for besides a Fault: `stale-watch` answers a watch as the API server answers
 * one from a compacted resourceVersion: HTTP 200 and one ERROR event with a 410 Expired Status.
 * (Forwarding `resourceVersion=1` instead is not reliable: a young API server whose watch cache
 * still reaches back that far serves the watch.)
 */
export type Planned = Fault | 'stale-watch'

export interface FaultProxy {
  kubeconfigPath: string
  stats: { requests: number; faults: Record<Fault, number> }
  close(): Promise<void>
}

/** mulberry32: a small seeded PRNG, so a run's fault pattern is reproducible for a given request order. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface FaultProxyOptions {
  rate?: number
  seed?: number
  userAgentPrefix?: string
  /** Chooses the fault of each of kata-lcm's requests instead of the seeded random draw. */
  plan?: (req: http.IncomingMessage) => Planned | undefined
}

export async function startFaultProxy(
  upstreamKubeconfig: string,
  outPath: string,
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const config = parse(readFileSync(upstreamKubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority'?: string } }[]
    users: { user: { 'client-certificate'?: string; 'client-key'?: string } }[]
  }
  const upstream = new URL(config.clusters[0]!.cluster.server)
  const tls = {
    ca: readFileSync(config.clusters[0]!.cluster['certificate-authority']!),
    cert: readFileSync(config.users[0]!.user['client-certificate']!),
    key: readFileSync(config.users[0]!.user['client-key']!),
  }
  const random = prng(options.seed ?? 42)
  const rate = options.rate ?? 0.1
  const prefix = options.userAgentPrefix ?? 'kata-lcm/'
  const stats = { requests: 0, faults: { '500': 0, '429': 0, reset: 0, 'drop-response': 0 } as Record<Fault, number> }

  let next = 0
  const server = http.createServer((req, res) => {
    const ours = (req.headers['user-agent'] ?? '').startsWith(prefix)
    if (ours) stats.requests++
    // Which requests fail is random (seeded); the kinds take turns, so every kind shows up.
    const planned = !ours
      ? undefined
      : options.plan
        ? options.plan(req)
        : random() < rate
          ? FAULTS[next++ % FAULTS.length]!
          : undefined
    const fault = planned === 'stale-watch' ? undefined : planned
    if (fault) stats.faults[fault]++
    if (planned === 'stale-watch') {
      res.writeHead(200, { 'content-type': 'application/json' })
      const status = {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: 'too old resource version: 1 (injected)',
        reason: 'Expired',
        code: 410,
      }
      return res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`)
    }
    if (fault === '500') {
      res.writeHead(500, { 'content-type': 'application/json' })
      return res.end(
        JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'injected fault', code: 500 }),
      )
    }
    if (fault === '429') {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' })
      return res.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: 'injected throttling',
          reason: 'TooManyRequests',
          code: 429,
        }),
      )
    }
    if (fault === 'reset') return req.socket.destroy()
    const forward = https.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        ...tls,
      },
      (answer) => {
        if (fault === 'drop-response') {
          answer.resume()
          answer.on('end', () => req.socket.destroy())
          return
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    forward.on('error', () => req.socket.destroy())
    res.on('close', () => forward.destroy())
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await writeFile(
    outPath,
    `apiVersion: v1\nkind: Config\nclusters: [{name: proxy, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: anonymous, user: {}}]\ncontexts: [{name: proxy, context: {cluster: proxy, user: anonymous}}]\ncurrent-context: proxy\n`,
  )
  return {
    kubeconfigPath: outPath,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
