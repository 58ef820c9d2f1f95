/**
 * KubeCluster against a small fake API server on 127.0.0.1 (real HTTP, real client-node, no module
 * mocks): the exact requests it sends (merge patch, user agent, watch parameters) and how its
 * waits survive what a real server does now and then (watch closed early, 410 Gone, refusals).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'
import createDebug from 'debug'
import { format } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_RETRY } from '../../../src/adapters/kube-retry.js'
import { KubeCluster } from '../../../src/adapters/kube-cluster.adapter.js'
import { ClusterError } from '../../../src/lifecycle/errors.js'

interface Seen {
  method: string
  url: URL
  headers: IncomingMessage['headers']
  body: string
  closed: Promise<void>
}

type Handler = (req: Seen, res: ServerResponse) => void

let server: Server
let port: number
let seen: Seen[] = []
let handler: Handler = (_req, res) => json(res, 404, status(404, 'no handler'))

function json(res: ServerResponse, code: number, body: unknown) {
  res.writeHead(code, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function status(code: number, message: string) {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, message }
}

/** Starts a watch stream; returns a writer of events. */
function stream(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
  res.flushHeaders()
  return (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`)
}

function podJson(name: string, rv: string, phase = 'Running') {
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: rv },
    spec: { containers: [{ name: 'c', image: 'i' }] },
    status: { phase },
  }
}

function list(rv: string, items: unknown[]) {
  return { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: rv }, items }
}

function kubeConfig(server = `http://127.0.0.1:${port}`): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  })
  return kc
}

// Retries as in production, minus the waiting.
const fastRetry = { ...DEFAULT_RETRY, sleep: async () => undefined }
const cluster = () => new KubeCluster(kubeConfig(), { userAgent: 'kata-lcm/test', retry: fastRetry })
const watches = () => seen.filter((r) => r.url.searchParams.get('watch') === 'true')
const lists = () => seen.filter((r) => r.method === 'GET' && r.url.searchParams.get('watch') !== 'true')
const within = (p: Promise<void>, ms: number) =>
  Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))])

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => (body += d))
    req.on('end', () => {
      const closed = new Promise<void>((resolve) => res.on('close', () => resolve()))
      const r: Seen = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://x'),
        headers: req.headers,
        body,
        closed,
      }
      seen.push(r)
      handler(r, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})

afterEach(() => {
  seen = []
  server.closeAllConnections()
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('KubeCluster requests', () => {
  it('patches a node with ONE merge patch naming only the given keys, with its user agent', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        metadata: { name: 'n1', uid: 'u1', annotations: { a: '1', foreign: 'keep' } },
        spec: { unschedulable: true },
      })
    const view = await cluster().patchNode('n1', { annotations: { a: '1', b: null }, unschedulable: true })
    expect(view).toMatchObject({ name: 'n1', unschedulable: true, annotations: { a: '1', foreign: 'keep' } })
    expect(seen).toHaveLength(1)
    const [req] = seen
    expect(req?.method).toBe('PATCH')
    expect(req?.url.pathname).toBe('/api/v1/nodes/n1')
    expect(req?.headers['content-type']).toBe('application/merge-patch+json')
    expect(req?.headers['user-agent']).toBe('kata-lcm/test')
    expect(req?.headers.authorization).toBe('Bearer secret-token')
    expect(JSON.parse(req?.body ?? '')).toEqual({
      metadata: { annotations: { a: '1', b: null } },
      spec: { unschedulable: true },
    })
  })

  it('uncordons by removing spec.unschedulable, and sends no spec for annotation-only patches', async () => {
    handler = (_req, res) => json(res, 200, { metadata: { name: 'n1' } })
    await cluster().patchNode('n1', { unschedulable: false })
    await cluster().patchNode('n1', { annotations: { k: 'v' } })
    expect(seen.map((r) => JSON.parse(r.body))).toEqual([
      { spec: { unschedulable: null } },
      { metadata: { annotations: { k: 'v' } } },
    ])
  })

  it('maps API failures to ClusterErrors with the call, the status and the server message', async () => {
    handler = (req, res) =>
      req.url.pathname.includes('daemonsets')
        ? json(res, 404, status(404, 'not found'))
        : json(res, 500, status(500, 'etcdserver: request timed out'))
    expect(await cluster().getDaemonSet('ns', 'ds')).toBeUndefined()
    const error = (await cluster()
      .getNode('n1')
      .catch((e: unknown) => e)) as ClusterError
    expect(error).toBeInstanceOf(ClusterError)
    expect(error.status).toBe(500)
    expect(error.message).toBe('get node n1 failed: HTTP 500: etcdserver: request timed out')
  })

  it('evicts: 201 evicted, 429 blocked, 404 gone, anything else a ClusterError', async () => {
    const answers: Record<string, number> = { a: 201, b: 429, c: 404, d: 500 }
    handler = (req, res) => {
      const name = req.url.pathname.split('/')[6] ?? ''
      const code = answers[name] ?? 500
      json(
        res,
        code,
        code === 201
          ? { kind: 'Status', status: 'Success', code }
          : status(code, code === 429 ? "Cannot evict pod as it would violate the pod's disruption budget." : 'boom'),
      )
    }
    const c = cluster()
    expect(await c.evictPod('ns', 'a')).toBe('evicted')
    expect(await c.evictPod('ns', 'b')).toBe('blocked')
    expect(await c.evictPod('ns', 'c')).toBe('gone')
    await expect(c.evictPod('ns', 'd')).rejects.toBeInstanceOf(ClusterError)
    expect(seen[0]?.url.pathname).toBe('/api/v1/namespaces/ns/pods/a/eviction')
    expect(JSON.parse(seen[0]?.body ?? '')).toMatchObject({
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name: 'a', namespace: 'ns' },
    })
  })

  it('records node Events in default with the node as involved object', async () => {
    handler = (req, res) => json(res, 201, JSON.parse(req.body))
    await cluster().recordNodeEvent(
      { name: 'n1', uid: 'u1', labels: {}, annotations: {}, taints: [], unschedulable: false },
      { reason: 'KataUpgraded', message: 'ok', type: 'Normal' },
    )
    expect(seen[0]?.url.pathname).toBe('/api/v1/namespaces/default/events')
    expect(JSON.parse(seen[0]?.body ?? '')).toMatchObject({
      involvedObject: { kind: 'Node', apiVersion: 'v1', name: 'n1', uid: 'u1' },
      reason: 'KataUpgraded',
      type: 'Normal',
      source: { component: 'kata-lcm' },
      reportingComponent: 'kata-lcm',
    })
  })
})

describe('KubeCluster waits', () => {
  it('lists, then watches from the list resourceVersion with its user agent, and closes the watch when decided', async () => {
    handler = (req, res) => {
      if (req.url.searchParams.get('watch') !== 'true') return json(res, 200, list('10', []))
      const send = stream(res)
      setTimeout(() => send('ADDED', podJson('p1', '11')), 50)
    }
    const result = await cluster().waitForPods(
      { namespace: 'ns', labelSelector: 'app=x' },
      (pods) => pods[0]?.name,
      10_000,
    )
    expect(result).toEqual({ done: true, value: 'p1' })
    const [watch] = watches()
    expect(watch?.url.pathname).toBe('/api/v1/namespaces/ns/pods')
    expect(Object.fromEntries(watch?.url.searchParams ?? [])).toMatchObject({
      watch: 'true',
      resourceVersion: '10',
      allowWatchBookmarks: 'true',
      labelSelector: 'app=x',
    })
    expect(watch?.headers['user-agent']).toBe('kata-lcm/test')
    expect(lists()[0]?.headers['user-agent']).toBe('kata-lcm/test')
    expect(await within(watch!.closed, 2000)).toBe(true)
  })

  it('DEBUG=kata-lcm*: every request, API call and watch alike, is one kata-lcm:kube line with its method and URL', async () => {
    const lines: string[] = []
    const log = createDebug.log
    const before = createDebug.disable()
    createDebug.enable('kata-lcm:kube')
    createDebug.log = (...args: unknown[]) => void lines.push(format(...args))
    try {
      handler = (req, res) => {
        if (req.url.searchParams.get('watch') !== 'true') return json(res, 200, list('10', []))
        const send = stream(res)
        setTimeout(() => send('ADDED', podJson('p1', '11')), 50)
      }
      const kube = cluster()
      await kube.waitForPods({ namespace: 'ns', labelSelector: 'app=x' }, (pods) => pods[0]?.name, 10_000)
    } finally {
      createDebug.log = log
      createDebug.disable()
      if (before) createDebug.enable(before)
    }
    const requests = lines.filter((l) => / (GET|POST|PATCH|PUT|DELETE) http/.test(l))
    expect(requests).toHaveLength(seen.length)
    expect(requests[0]).toMatch(new RegExp(`kata-lcm:kube GET http://127.0.0.1:${port}/api/v1/namespaces/ns/pods\\?`))
    expect(requests[1]).toMatch(/kata-lcm:kube GET http:\/\/127.0.0.1:\d+\/api\/v1\/namespaces\/ns\/pods\?.*watch=true/)
  })

  it('decides on the initial list without watching', async () => {
    handler = (_req, res) => json(res, 200, list('10', [podJson('p1', '9')]))
    expect(await cluster().waitForPods({ namespace: 'ns' }, (pods) => pods.length, 10_000)).toEqual({
      done: true,
      value: 1,
    })
    expect(watches()).toHaveLength(0)
  })

  it('resumes a watch the server closed from the last resourceVersion seen, without re-listing', async () => {
    handler = (req, res) => {
      if (req.url.searchParams.get('watch') !== 'true') return json(res, 200, list('10', []))
      const send = stream(res)
      if (watches().length === 1) {
        send('ADDED', podJson('p1', '11', 'Pending'))
        send('BOOKMARK', { metadata: { resourceVersion: '15' } })
        setTimeout(() => res.end(), 50)
      } else {
        send('MODIFIED', podJson('p1', '16', 'Running'))
      }
    }
    const result = await cluster().waitForPods(
      { namespace: 'ns' },
      (pods) => (pods[0]?.phase === 'Running' ? 'running' : undefined),
      10_000,
    )
    expect(result).toEqual({ done: true, value: 'running' })
    expect(lists()).toHaveLength(1)
    expect(watches().map((w) => w.url.searchParams.get('resourceVersion'))).toEqual(['10', '15'])
  })

  it('re-lists after 410 Gone', async () => {
    handler = (req, res) => {
      if (req.url.searchParams.get('watch') !== 'true') {
        return json(
          res,
          200,
          lists().length === 1 ? list('10', [podJson('old', '5')]) : list('50', [podJson('p2', '49')]),
        )
      }
      const send = stream(res)
      if (watches().length === 1) send('ERROR', status(410, 'too old resource version: 10 (40)'))
    }
    const calls: string[][] = []
    const result = await cluster().waitForPods(
      { namespace: 'ns' },
      (pods) => {
        calls.push(pods.map((p) => p.name))
        return pods.some((p) => p.name === 'p2') ? 'p2' : undefined
      },
      10_000,
    )
    expect(result).toEqual({ done: true, value: 'p2' })
    expect(lists()).toHaveLength(2)
    // The re-list replaces the state: `old` is not carried over.
    expect(calls).toEqual([['old'], ['p2']])
    expect(await within(watches()[0]!.closed, 2000)).toBe(true)
  })

  it('times out with the last state and closes the watch', async () => {
    handler = (req, res) => {
      if (req.url.searchParams.get('watch') !== 'true')
        return json(res, 200, list('10', [podJson('p1', '9', 'Pending')]))
      stream(res)
    }
    const t0 = Date.now()
    const result = await cluster().waitForPods({ namespace: 'ns' }, () => undefined, 400)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390)
    expect(result.done).toBe(false)
    if (!result.done) expect(result.last.map((p) => [p.name, p.phase])).toEqual([['p1', 'Pending']])
    expect(await within(watches()[0]!.closed, 2000)).toBe(true)
  })

  it('rejects with the abort reason and closes the watch', async () => {
    handler = (req, res) =>
      req.url.searchParams.get('watch') !== 'true' ? json(res, 200, list('10', [])) : stream(res)
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('interrupted')), 200)
    await expect(
      cluster().waitForPods({ namespace: 'ns' }, () => undefined, 60_000, controller.signal),
    ).rejects.toThrow('interrupted')
    expect(await within(watches()[0]!.closed, 2000)).toBe(true)
  })

  it('fails with a ClusterError naming the watch verb when the watch is refused', async () => {
    handler = (req, res) =>
      req.url.searchParams.get('watch') !== 'true'
        ? json(res, 200, list('10', []))
        : json(res, 403, status(403, 'pods is forbidden'))
    const error = (await cluster()
      .waitForPods({ namespace: 'ns' }, () => undefined, 10_000)
      .catch((e: unknown) => e)) as ClusterError
    expect(error).toBeInstanceOf(ClusterError)
    expect(error.status).toBe(403)
    expect(error.suggestions[0]).toContain('RBAC must allow verb "watch" on "pods" in namespace ns')
  })

  it('watches Jobs and a DaemonSet until the controller observed it, then picks the newest owned revision', async () => {
    handler = (req, res) => {
      const path = req.url.pathname
      if (path.endsWith('/daemonsets') && req.url.searchParams.get('watch') !== 'true') {
        return json(res, 200, {
          metadata: { resourceVersion: '20' },
          items: [
            {
              metadata: { name: 'kd', namespace: 'ns', uid: 'ds-uid', generation: 3 },
              status: { observedGeneration: 2 },
            },
          ],
        })
      }
      if (path.endsWith('/daemonsets')) {
        const send = stream(res)
        return void setTimeout(
          () =>
            send('MODIFIED', {
              metadata: { name: 'kd', namespace: 'ns', uid: 'ds-uid', generation: 3, resourceVersion: '21' },
              status: { observedGeneration: 3 },
            }),
          50,
        )
      }
      if (path.endsWith('/controllerrevisions')) {
        const rev = (name: string, revision: number, uid: string) => ({
          metadata: {
            name,
            labels: { 'controller-revision-hash': name.split('-')[1] },
            ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'kd', uid, controller: true }],
          },
          revision,
          data: {},
        })
        return json(res, 200, {
          metadata: {},
          items: [
            rev('kd-aaa', 1, 'ds-uid'),
            rev('kd-ccc', 3, 'ds-uid'),
            rev('other-zzz', 9, 'other-uid'),
            rev('kd-bbb', 2, 'ds-uid'),
          ],
        })
      }
      json(res, 404, status(404, 'no'))
    }
    expect(await cluster().daemonSetRevisionHash('ns', 'kd', 10_000)).toBe('ccc')
    const dsWatch = watches()[0]
    expect(dsWatch?.url.searchParams.get('fieldSelector')).toBe('metadata.name=kd')
    expect(await within(dsWatch!.closed, 2000)).toBe(true)
  })
})

describe('KubeCluster without an API server', () => {
  // A port that was just free: fetch refuses port 1 outright ("bad port") before connecting.
  let deadUrl = ''
  beforeAll(async () => {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    deadUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`
    await new Promise((resolve) => probe.close(resolve))
  })
  const dead = () => new KubeCluster(kubeConfig(deadUrl), { retry: fastRetry })

  it('says to check the connection', async () => {
    const error = (await dead()
      .ping()
      .catch((e: unknown) => e)) as ClusterError
    expect(error).toBeInstanceOf(ClusterError)
    expect(error.status).toBeUndefined()
    expect(error.message).toMatch(/^list nodes \(connectivity check\) failed: .*ECONNREFUSED/)
    expect(error.suggestions[0]).toBe('is the API server reachable? check --kubeconfig/--context')
  })

  it('never fails recording an Event or collecting diagnostics', async () => {
    const c = dead()
    await expect(
      c.recordNodeEvent(
        { name: 'n', uid: 'u', labels: {}, annotations: {}, taints: [], unschedulable: false },
        { reason: 'R', message: 'm', type: 'Normal' },
      ),
    ).resolves.toBeUndefined()
    await expect(c.podDiagnostics('ns', 'p', 10)).resolves.toEqual({ events: [], logTail: [] })
  })
})
