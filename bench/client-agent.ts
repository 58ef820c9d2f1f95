// Micro-benchmark: @kubernetes/client-node 2.x as it comes (a NEW undici Agent, so a new TCP and TLS
// connection with the client certificate, for every API call) against the same calls through
// kata-lcm's withUserAgent (src/adapters/kube-config.ts: one keep-alive dispatcher per connection).
//
//   npx tsx bench/client-agent.ts KUBECONFIG [--nodes 50] [--rounds 10] [--concurrency 50]
//
// Each mode runs in its own process (so its RSS is its own): `rounds` rounds of one merge patch per
// node (concurrency `concurrency`), then as many sequential GETs. Creates `nodes` fake nodes
// (fleet label agentbench) first and deletes them at the end.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { withUserAgent } from '../src/adapters/kube-config.js'
import { connect, createFleet, pool } from './lib/kube.js'

const FLEET = 'agentbench'

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}

function hwmKb(): number {
  return Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)
}

async function child(mode: string, kubeconfig: string): Promise<void> {
  const base = new KubeConfig()
  base.loadFromFile(kubeconfig)
  const kc = mode === 'shared-agent' ? withUserAgent(base, 'kata-lcm-bench/agent') : base
  const core = kc.makeApiClient(CoreV1Api)
  const nodes = (await core.listNode({ labelSelector: `kata-lcm.bench/fleet=${FLEET}` })).items.map(
    (n) => n.metadata!.name!,
  )
  const rounds = arg('--rounds', 10)
  const lat: number[] = []
  const t0 = Date.now()
  for (let r = 0; r < rounds; r++) {
    await pool(nodes, arg('--concurrency', 50), async (name) => {
      const s = performance.now()
      await core.patchNode(
        { name, body: { metadata: { annotations: { 'kata-lcm.bench/agent': `${mode}-${r}` } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      lat.push(performance.now() - s)
    })
  }
  const patchMs = Date.now() - t0
  const t1 = Date.now()
  const getLat: number[] = []
  for (let i = 0; i < nodes.length * rounds; i++) {
    const s = performance.now()
    await core.readNode({ name: nodes[i % nodes.length]! })
    getLat.push(performance.now() - s)
  }
  const getMs = Date.now() - t1
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!
  process.stdout.write(
    JSON.stringify({
      mode,
      patches: lat.length,
      patchWallMs: patchMs,
      patchMedianMs: Math.round(med(lat) * 10) / 10,
      gets: getLat.length,
      getWallMs: getMs,
      getMedianMs: Math.round(med(getLat) * 10) / 10,
      peakRssMb: Math.round(hwmKb() / 102.4) / 10,
      cpuUserMs: Math.round(process.cpuUsage().user / 1000),
      cpuSystemMs: Math.round(process.cpuUsage().system / 1000),
    }) + '\n',
  )
}

async function main(): Promise<void> {
  const kubeconfig = process.argv[2]
  if (!kubeconfig) throw new Error('usage: client-agent.ts KUBECONFIG [--nodes 50] [--rounds 10] [--concurrency 50]')
  if (process.argv[3] === '--child') return child(process.argv[4]!, kubeconfig)
  const k = connect(kubeconfig)
  const names = Array.from({ length: arg('--nodes', 50) }, (_, i) => `agent-${i}`)
  await createFleet(k, names, FLEET, 120_000)
  try {
    for (const mode of ['per-request-agent', 'shared-agent', 'per-request-agent', 'shared-agent']) {
      await new Promise<void>((resolve, reject) => {
        const c = spawn(
          process.execPath,
          [...process.execArgv, fileURLToPath(import.meta.url), kubeconfig, '--child', mode, ...process.argv.slice(3)],
          { stdio: ['ignore', 'inherit', 'inherit'] },
        )
        c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${mode} exited ${code}`))))
      })
    }
  } finally {
    await pool(names, 16, async (name) => {
      await k.core.deleteNode({ name }).catch(() => undefined)
    })
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
