// Child processes for the benchmark: timestamped output lines, peak RSS, optional time budget.
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'

export interface Line {
  t: number
  stream: 'out' | 'err'
  text: string
}

export interface ProcResult {
  code: number | null
  signal: string | null
  startMs: number
  endMs: number
  wallMs: number
  lines: Line[]
  /** VmHWM of the spawned process itself (not its children), kB; polled every 100 ms. */
  peakRssKb: number
  /** utime + stime of the spawned process itself (not its children), seconds, last value polled. */
  cpuS: number
  /** True when the budget ran out and the process group was terminated. */
  budgetHit: boolean
}

/** utime + stime of a process in seconds (USER_HZ = 100 on Linux). */
async function cpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

async function vmHwmKb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs `cmd args` in its own process group. Every output line is kept with the time it arrived
 * (stderr progress lines carry their own timestamps too). With `budgetMs`, the whole group gets
 * SIGTERM when it runs out (then SIGKILL 10 s later); with budgetSignal 'interrupt' only the process
 * itself gets SIGINT (kata-lcm then stops at the next safe point, after the current wave).
 */
export function runProc(
  cmd: string,
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv
    cwd?: string
    budgetMs?: number
    budgetSignal?: 'group-term' | 'interrupt'
    onLine?: (l: Line) => void
  } = {},
): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const startMs = Date.now()
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    const lines: Line[] = []
    let peak = 0
    let cpu = 0
    let budgetHit = false
    const pid = child.pid
    if (pid === undefined) return reject(new Error(`could not start ${cmd}`))
    const poll = setInterval(() => {
      void vmHwmKb(pid).then((kb) => {
        if (kb !== undefined && kb > peak) peak = kb
      })
      void cpuSeconds(pid).then((c) => {
        if (c !== undefined && c > cpu) cpu = c
      })
    }, 100)
    let budget: NodeJS.Timeout | undefined
    let killer: NodeJS.Timeout | undefined
    if (opts.budgetMs !== undefined) {
      budget = setTimeout(() => {
        budgetHit = true
        if (opts.budgetSignal === 'interrupt') {
          // SIGINT to the process only (not its helm children): kata-lcm stops after the current wave.
          try {
            process.kill(pid, 'SIGINT')
          } catch {
            /* gone */
          }
          killer = setTimeout(() => {
            try {
              process.kill(-pid, 'SIGKILL')
            } catch {
              /* gone */
            }
          }, 900_000)
          return
        }
        try {
          process.kill(-pid, 'SIGTERM')
        } catch {
          /* gone */
        }
        killer = setTimeout(() => {
          try {
            process.kill(-pid, 'SIGKILL')
          } catch {
            /* gone */
          }
        }, 10_000)
      }, opts.budgetMs)
    }
    const capture = (stream: NodeJS.ReadableStream, name: 'out' | 'err') => {
      const rl = createInterface({ input: stream, crlfDelay: Infinity })
      rl.on('line', (text) => {
        const l = { t: Date.now(), stream: name, text }
        lines.push(l)
        opts.onLine?.(l)
      })
      return new Promise<void>((r) => rl.on('close', () => r()))
    }
    const outs = Promise.all([capture(child.stdout, 'out'), capture(child.stderr, 'err')])
    child.on('error', (e) => {
      clearInterval(poll)
      reject(e)
    })
    child.on('exit', (code, signal) => {
      const endMs = Date.now()
      clearInterval(poll)
      if (budget) clearTimeout(budget)
      if (killer) clearTimeout(killer)
      void outs.then(() =>
        resolve({
          code,
          signal,
          startMs,
          endMs,
          wallMs: endMs - startMs,
          lines,
          peakRssKb: peak,
          cpuS: cpu,
          budgetHit,
        }),
      )
    })
  })
}

/** Runs a command to completion and throws on a non-zero exit; returns stdout. */
export async function must(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await runProc(cmd, args, { env })
  const out = r.lines
    .filter((l) => l.stream === 'out')
    .map((l) => l.text)
    .join('\n')
  if (r.code !== 0) {
    const err = r.lines
      .filter((l) => l.stream === 'err')
      .map((l) => l.text)
      .slice(-20)
      .join('\n')
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}):\n${err}`)
  }
  return out
}
