/**
 * Runs one kata-lcm command class in this process, as `kata-lcm ARGV` would (oclif's parse, the
 * base command's one-line errors and exit codes), and returns what it printed and its exit code.
 * For the checks that need no cluster, or only the small one a test serves itself.
 */
import { Config, Errors, type Command } from '@oclif/core'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { format } from 'node:util'
import { vi } from 'vitest'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

let config: Promise<Config> | undefined

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** `kata-lcm <command> ...argv` with `env` set for the run (undefined: unset); never throws for an exit code. */
export async function runCli(
  command: Command.Class,
  argv: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  // As the installed CLI runs (oclif warns about development matters when NODE_ENV is test).
  env = { NODE_ENV: 'production', ...env }
  const saved = {
    exitCode: process.exitCode,
    env: Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]])),
  }
  const out: string[] = []
  const err: string[] = []
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0)
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0)
  // oclif's this.log and this.warn print through console.
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(`${format(...a)}\n`))
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(`${format(...a)}\n`))
  for (const [k, v] of Object.entries(env)) setEnv(k, v)
  process.exitCode = undefined
  let code: number
  try {
    await command.run(argv, await (config ??= Config.load(ROOT)))
    code = Number(process.exitCode ?? 0)
  } catch (error) {
    if (!(error instanceof Errors.ExitError || (error as { oclif?: { exit?: number } }).oclif?.exit !== undefined))
      throw error
    code = (error as { oclif: { exit: number } }).oclif.exit
  } finally {
    stdout.mockRestore()
    stderr.mockRestore()
    log.mockRestore()
    error.mockRestore()
    for (const [k, v] of Object.entries(saved.env)) setEnv(k, v)
    process.exitCode = saved.exitCode
  }
  return { code, stdout: out.join(''), stderr: err.join('') }
}

function setEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
}

export interface ApiServer {
  /** A kubeconfig file that points at the server. */
  kubeconfig: string
  /** `METHOD /path?query` of every request, in order. */
  requests: string[]
  /** Stops answering (the port is then closed: nothing listens), keeping the kubeconfig. */
  stop(): Promise<void>
  close(): Promise<void>
}

type Answer = { status: number; body: unknown }

/**
 * A small API server on 127.0.0.1: `answer` gives each request's reply (default 404), and every
 * request is recorded, so a test can say a command asked nothing of the cluster.
 */
export async function apiServer(
  answer: (method: string, url: string) => Answer | undefined = () => undefined,
): Promise<ApiServer> {
  const requests: string[] = []
  const server = createServer((req, res) => {
    const line = `${req.method} ${req.url}`
    requests.push(line)
    const reply = answer(req.method ?? 'GET', req.url ?? '/') ?? {
      status: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        code: 404,
        reason: 'NotFound',
        message: `${line} not found`,
      },
    }
    res.writeHead(reply.status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(reply.body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-cli-'))
  const kubeconfig = path.join(dir, 'kubeconfig')
  await writeFile(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
  )
  const stop = async () => {
    if (!server.listening) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return {
    kubeconfig,
    requests,
    stop,
    close: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
