/**
 * A real Prometheus server for the alert gate's e2e tests (kata-lcm asks `GET /api/v1/alerts` before
 * each wave): the test bed's `prometheus` (scripts/testbed/build-tools.sh prometheus, PROMETHEUS_VERSION
 * in scripts/testbed/versions.env) scraping a tiny target served by the test process itself, with one
 * alerting rule on that target's gauge. fire() / clear() set the gauge; Prometheus scrapes and
 * evaluates every second, so the alert fires or goes within about two seconds.
 *
 * Everything lives in a temp dir (config, rule file, TSDB, Prometheus' log) that stop() removes.
 * Prometheus is started under `setpriv --pdeathsig KILL` where setpriv exists, so it dies with the
 * test process even when that is killed; a normal exit of the test process kills it too.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, openSync, readFileSync, closeSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import path from 'node:path'
import { stringify } from 'yaml'

import { toolsBinDir } from './cluster.js'

export const DEFAULT_ALERT_NAME = 'KataLcmTestAlert'
/** The gauge the test target serves and the rule watches. */
export const CONDITION_METRIC = 'kata_lcm_test_condition'

export interface TestPrometheus {
  /** http://127.0.0.1:PORT (with `forPods`, the host's address), Prometheus' HTTP API. */
  url: string
  /** The alert's name (label alertname). */
  alertName: string
  /** Make the test alert's condition true (the target serves `kata_lcm_test_condition 1`). */
  fire(): void
  /** Make it false (`kata_lcm_test_condition 0`). */
  clear(): void
  /** Polls /api/v1/alerts until the alert is firing, or until no alert of that name is there. */
  waitForAlert(state: 'firing' | 'none', timeoutMs?: number): Promise<void>
  /** Kill Prometheus, close the target server, remove the temp dir. Idempotent. */
  stop(): Promise<void>
}

export interface StartPrometheusOptions {
  /** The alert's name; default KataLcmTestAlert. */
  alertName?: string
  /** Labels of the alert besides `severity: critical` (which they may override). */
  labels?: Record<string, string>
  /** Listen on the host's address rather than loopback, so pods (Argo's step pods) reach it. */
  forPods?: boolean
}

/** One alert of `GET /api/v1/alerts` (Prometheus' HTTP API). */
export interface PrometheusAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  state: 'pending' | 'firing'
  activeAt?: string
  value?: string
}

/** Prometheus processes of this test process, killed on its exit if a test did not stop them. */
const live = new Set<ChildProcess>()
let exitHookSet = false
function killLeftovers(): void {
  for (const child of live) child.kill('SIGKILL')
}

/** A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). */
async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** A URL of a free local port nothing listens on (a Prometheus that is down). */
export async function unreachablePrometheusUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`
}

/** `GET /api/v1/alerts` of the Prometheus at `url`. */
export async function prometheusAlerts(url: string): Promise<PrometheusAlert[]> {
  const res = await fetch(`${url}/api/v1/alerts`, { signal: AbortSignal.timeout(5_000) })
  const body = (await res.json()) as { status: string; data?: { alerts?: PrometheusAlert[] }; error?: string }
  if (!res.ok || body.status !== 'success') {
    throw new Error(`GET ${url}/api/v1/alerts: HTTP ${res.status} ${body.error ?? JSON.stringify(body)}`)
  }
  return body.data?.alerts ?? []
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** The host's first non-loopback IPv4 address. */
export function hostAddress(): string {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
  if (!found) throw new Error('no non-loopback IPv4 address on this host for pods to reach Prometheus at')
  return found.address
}

/** The target's scrape answer: the condition gauge in Prometheus' text format. */
function exposition(value: 0 | 1): string {
  return (
    `# HELP ${CONDITION_METRIC} 1 while the e2e test wants its alert to fire.\n` +
    `# TYPE ${CONDITION_METRIC} gauge\n${CONDITION_METRIC} ${value}\n`
  )
}

export async function startPrometheus(options: StartPrometheusOptions = {}): Promise<TestPrometheus> {
  const alertName = options.alertName ?? DEFAULT_ALERT_NAME
  const bin = path.join(toolsBinDir(), 'prometheus')
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/testbed/build-tools.sh prometheus`)

  let condition: 0 | 1 = 0
  const target = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(exposition(condition))
  })
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
  const targetPort = (target.address() as AddressInfo).port
  const closeTarget = () =>
    new Promise<void>((resolve) => {
      target.closeAllConnections()
      target.close(() => resolve())
    })

  let dir: string | undefined
  let child: ChildProcess | undefined
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    if (child) await killAndWait(child)
    await closeTarget()
    if (dir) await rm(dir, { recursive: true, force: true })
  }

  try {
    dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-prometheus-'))
    const configFile = path.join(dir, 'prometheus.yml')
    const rulesFile = path.join(dir, 'rules.yml')
    const logFile = path.join(dir, 'prometheus.log')
    await writeFile(
      rulesFile,
      stringify({
        groups: [
          {
            name: 'kata-lcm-test',
            rules: [
              {
                alert: alertName,
                expr: `${CONDITION_METRIC} > 0`,
                for: '0s',
                labels: { severity: 'critical', ...options.labels },
                annotations: { summary: 'kata-lcm e2e test alert (the test target says so)' },
              },
            ],
          },
        ],
      }),
    )
    await writeFile(
      configFile,
      stringify({
        global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
        rule_files: [rulesFile],
        scrape_configs: [{ job_name: 'kata-lcm-test', static_configs: [{ targets: [`127.0.0.1:${targetPort}`] }] }],
      }),
    )

    const port = await freePort()
    // For pods (the real node's Argo steps): the host's own address, which its pod bridge routes to.
    const host = options.forPods ? hostAddress() : '127.0.0.1'
    const url = `http://${host}:${port}`
    const args = [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      '--storage.tsdb.retention.time=1h',
      `--web.listen-address=${host}:${port}`,
      '--web.max-connections=64',
      '--query.max-concurrency=4',
      '--log.level=info',
    ]
    const log = openSync(logFile, 'a')
    // setpriv execs Prometheus (same pid) with a parent-death signal: no orphan if the test process dies.
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p))
    const proc = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'KILL', bin, ...args], { stdio: ['ignore', log, log], env: lightEnv() })
      : spawn(bin, args, { stdio: ['ignore', log, log], env: lightEnv() })
    child = proc
    closeSync(log)
    live.add(proc)
    if (!exitHookSet) {
      exitHookSet = true
      process.once('exit', killLeftovers)
    }
    let exited: string | undefined
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      exited = `exit ${code ?? signal}`
    })
    proc.once('error', (err) => {
      live.delete(proc)
      exited = err.message
    })

    // Ready: TSDB open, config and rules loaded (Prometheus answers 503 until then).
    const deadline = Date.now() + 60_000
    for (;;) {
      if (exited) throw new Error(`prometheus ended before it was ready (${exited}):\n${tail(logFile)}`)
      const ok = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.ok,
        () => false,
      )
      if (ok) break
      if (Date.now() > deadline) throw new Error(`prometheus at ${url} not ready within 60 s:\n${tail(logFile)}`)
      await sleep(100)
    }

    const waitForAlert = async (state: 'firing' | 'none', timeoutMs = 20_000): Promise<void> => {
      const until = Date.now() + timeoutMs
      let last: PrometheusAlert[] | string
      for (;;) {
        if (exited) throw new Error(`prometheus ended (${exited}):\n${tail(logFile)}`)
        try {
          const mine = (await prometheusAlerts(url)).filter((a) => a.labels['alertname'] === alertName)
          last = mine
          if (state === 'firing' ? mine.some((a) => a.state === 'firing') : mine.length === 0) return
        } catch (err) {
          last = (err as Error).message
        }
        if (Date.now() > until) {
          throw new Error(
            `alert ${alertName} not ${state === 'firing' ? 'firing' : 'gone'} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
          )
        }
        await sleep(200)
      }
    }

    return {
      url,
      alertName,
      fire: () => {
        condition = 1
      },
      clear: () => {
        condition = 0
      },
      waitForAlert,
      stop,
    }
  } catch (err) {
    await stop().catch(() => undefined)
    throw err
  }
}

/** One OS thread of Go code is plenty for one target and one rule (the test bed has 2 cores). */
function lightEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOMAXPROCS: '1' }
}

/** SIGTERM (Prometheus shuts down cleanly within a second), SIGKILL after 10 s. */
async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await gone
  clearTimeout(timer)
  live.delete(child)
}
