/**
 * Prometheus' own text-format parser for the e2e tests: test/tools/promcheck (built by
 * build-tools.sh from prometheus/common's expfmt, what node_exporter's textfile collector and a
 * Prometheus scrape use). A text it cannot parse rejects with its error.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { toolsBinDir } from './cluster.js'

export interface MetricFamily {
  type: 'COUNTER' | 'GAUGE' | 'UNTYPED' | 'HISTOGRAM' | 'SUMMARY'
  help: string
  samples: { labels: Record<string, string>; value: number }[]
}

export function parseMetrics(text: string): Promise<Record<string, MetricFamily>> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(toolsBinDir(), 'promcheck'), [], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(stdout) as Record<string, MetricFamily>)
        : reject(new Error(`promcheck refused the metrics (exit ${code}): ${stderr.trim()}\n${text}`)),
    )
    child.stdin.end(text)
  })
}
