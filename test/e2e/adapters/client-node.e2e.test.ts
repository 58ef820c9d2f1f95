/**
 * What the adapters rely on from @kubernetes/client-node 2.x (undici/fetch underneath), proven on
 * the real API server: keep-alive connection reuse, retries that honour Retry-After, a watch that
 * re-lists after 410 Gone, and exec / token / token-file kubeconfig credentials.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KubeCluster } from '../../../src/adapters/kube-cluster.adapter.js'
import { createKubeConfig } from '../../../src/adapters/kube-config.js'
import { AuditLog } from '../harness/audit.js'
import { e2eCluster, loadKubeConfig } from '../harness/cluster.js'
import { startFaultProxy } from '../harness/fault-proxy.js'
import { createFakeNodes, deleteNodes } from '../harness/nodes.js'

const id = randomBytes(3).toString('hex')
const NS = `clientnode-${id}`
const NODE = `cn-${id}-a`
const SA = 'reader'

/** A TCP pass-through in front of the API server that counts the connections opened through it. */
async function countingTunnel(
  server: URL,
): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0
  const sockets = new Set<net.Socket>()
  const tunnel = net.createServer((client) => {
    count++
    const upstream = net.connect(Number(server.port), server.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => undefined)
      s.on('close', () => sockets.delete(s))
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => tunnel.listen(0, '127.0.0.1', resolve))
  return {
    port: (tunnel.address() as net.AddressInfo).port,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        tunnel.close(() => resolve())
      }),
  }
}

describe('client-node 2 on the real API server', () => {
  let harness: KubeConfig
  let core: CoreV1Api
  let dir: string

  beforeAll(async () => {
    harness = loadKubeConfig()
    core = harness.makeApiClient(CoreV1Api)
    dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-clientnode-'))
    await core.createNamespace({ body: { metadata: { name: NS } } })
    await createFakeNodes(harness, [{ name: NODE, labels: { 'kata-lcm.test/clientnode': id } }])
  })

  afterAll(async () => {
    await core?.deleteNamespace({ name: NS }).catch(() => undefined)
    if (harness) await deleteNodes(harness, [NODE]).catch(() => undefined)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('reuses keep-alive TLS connections: 40 calls and a watch over a handful of connections (client-node alone opens one per call)', async () => {
    const kc = createKubeConfig({ kubeconfig: e2eCluster().kubeconfigPath })
    const server = new URL(kc.getCurrentCluster()!.server)
    const tunnel = await countingTunnel(server)
    try {
      const viaTunnel = (base: KubeConfig) => {
        const copy = new KubeConfig()
        copy.loadFromOptions({
          clusters: base.getClusters().map((c) => ({ ...c, server: `https://${server.hostname}:${tunnel.port}` })),
          users: base.getUsers(),
          contexts: base.getContexts(),
          currentContext: base.getCurrentContext(),
        })
        return copy
      }
      const cluster = new KubeCluster(viaTunnel(kc))
      for (let i = 0; i < 40; i++) expect((await cluster.getNode(NODE))?.name).toBe(NODE)
      await cluster.waitForPods({ namespace: NS, labelSelector: 'none=here' }, () => true, 5_000)
      const ours = tunnel.connections()
      expect(ours).toBeLessThanOrEqual(3)

      const before = tunnel.connections()
      const plain = viaTunnel(kc).makeApiClient(CoreV1Api)
      for (let i = 0; i < 10; i++) await plain.readNode({ name: NODE })
      // The reason for kata-lcm's dispatcher cache: without it every call is a new TLS handshake.
      expect(tunnel.connections() - before).toBeGreaterThanOrEqual(10)
    } finally {
      await tunnel.close()
    }
  })

  it('retries a 429 after the Retry-After the server sent, then succeeds', async () => {
    const seen: number[] = []
    let throttled = false
    const proxy = await startFaultProxy(e2eCluster().kubeconfigPath, path.join(dir, 'throttle.kubeconfig'), {
      plan: (req) => {
        if (!req.url?.startsWith(`/api/v1/nodes/${NODE}`)) return undefined
        seen.push(Date.now())
        if (throttled) return undefined
        throttled = true
        return '429'
      },
    })
    try {
      const node = await new KubeCluster(createKubeConfig({ kubeconfig: proxy.kubeconfigPath })).getNode(NODE)
      expect(node?.name).toBe(NODE)
      expect(seen).toHaveLength(2)
      // The proxy's 429 says Retry-After: 1.
      expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(950)
    } finally {
      await proxy.close()
    }
  })

  it('a watch the API server answers with 410 Gone re-lists and still sees what happens next', async () => {
    const requests: string[] = []
    let staled = false
    const proxy = await startFaultProxy(e2eCluster().kubeconfigPath, path.join(dir, 'stale.kubeconfig'), {
      plan: (req) => {
        if (!req.url?.startsWith(`/api/v1/namespaces/${NS}/pods`)) return undefined
        const watch = new URL(req.url, 'http://x').searchParams.get('watch') === 'true'
        requests.push(watch ? 'watch' : 'list')
        if (!watch || staled) return undefined
        staled = true
        return 'stale-watch'
      },
    })
    try {
      const cluster = new KubeCluster(createKubeConfig({ kubeconfig: proxy.kubeconfigPath }))
      const name = `late-${id}`
      const waiting = cluster.waitForPods(
        { namespace: NS, labelSelector: `clientnode=${id}` },
        (pods) => (pods.some((p) => p.name === name) ? true : undefined),
        60_000,
      )
      // Created once the stale watch has been answered and the wait has re-listed.
      while (requests.filter((r) => r === 'list').length < 2) await new Promise((r) => setTimeout(r, 50))
      await core.createNamespacedPod({
        namespace: NS,
        body: {
          metadata: { name, labels: { clientnode: id } },
          spec: { nodeName: NODE, containers: [{ name: 'c', image: 'registry.example/x:1' }] },
        },
      })
      const result = await waiting
      expect(result.done).toBe(true)
      expect(requests.slice(0, 3)).toEqual(['list', 'watch', 'list'])
    } finally {
      await proxy.close()
    }
  })

  it('authenticates with an exec credential plugin, a token and a token file, as the service account', async () => {
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } })
    // Allowed to read nodes, nothing else.
    const rbac = harness.makeApiClient(RbacAuthorizationV1Api)
    await rbac.createClusterRole({
      body: {
        metadata: { name: `clientnode-${id}-nodes` },
        rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] }],
      },
    })
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `clientnode-${id}-nodes` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `clientnode-${id}-nodes` },
        subjects: [{ kind: 'ServiceAccount', name: SA, namespace: NS }],
      },
    })
    try {
      const token = (
        await core.createNamespacedServiceAccountToken({
          namespace: NS,
          name: SA,
          body: { spec: { expirationSeconds: 600 } },
        })
      ).status!.token!
      const base = createKubeConfig({ kubeconfig: e2eCluster().kubeconfigPath })
      const cluster = base.getCurrentCluster()!
      const tokenFile = path.join(dir, 'token')
      await writeFile(tokenFile, token)
      const credential = JSON.stringify({
        apiVersion: 'client.authentication.k8s.io/v1',
        kind: 'ExecCredential',
        status: { token },
      })
      const users: Record<string, Record<string, unknown>> = {
        exec: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: '/bin/sh',
            args: ['-c', `printf '%s' '${credential}'`],
            interactiveMode: 'Never',
          },
        },
        token: { token },
        tokenFile: { tokenFile },
      }
      const audit = new AuditLog(e2eCluster().auditLogPath)
      for (const [kind, user] of Object.entries(users)) {
        const file = path.join(dir, `${kind}.kubeconfig`)
        await writeFile(
          file,
          stringify({
            apiVersion: 'v1',
            kind: 'Config',
            'current-context': 'c',
            clusters: [
              {
                name: 'c',
                cluster: {
                  server: cluster.server,
                  ...(cluster.caFile
                    ? { 'certificate-authority': cluster.caFile }
                    : { 'certificate-authority-data': cluster.caData }),
                },
              },
            ],
            users: [{ name: 'u', user }],
            contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
          }),
        )
        const t0 = new Date()
        const nodes = await new KubeCluster(createKubeConfig({ kubeconfig: file }), {
          userAgent: `kata-lcm/auth-${kind}`,
        })
          .listNodes(`kata-lcm.test/clientnode=${id}`)
          .catch((error: unknown) => {
            throw new Error(`${kind}: ${(error as Error).message}`, { cause: error })
          })
        expect(
          nodes.map((n) => n.name),
          kind,
        ).toEqual([NODE])
        await audit.barrier(harness)
        const calls = await audit.find({ since: t0, userAgentPrefix: `kata-lcm/auth-${kind}`, resource: 'nodes' })
        expect(calls.length, kind).toBeGreaterThan(0)
        expect(
          calls.every((e) => e.user?.username === `system:serviceaccount:${NS}:${SA}`),
          kind,
        ).toBe(true)
      }
    } finally {
      await rbac.deleteClusterRole({ name: `clientnode-${id}-nodes` }).catch(() => undefined)
      await rbac.deleteClusterRoleBinding({ name: `clientnode-${id}-nodes` }).catch(() => undefined)
    }
  })
})
