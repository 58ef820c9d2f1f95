/** createDeps: one cluster client per connection in a process (the policy lookup and the run share it). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDeps } from '../../../src/deps.js'

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: { server: 'https://127.0.0.1:1' }
users:
- name: u
  user: { token: t }
contexts:
- name: a
  context: { cluster: c, user: u }
- name: b
  context: { cluster: c, user: u }
current-context: a
`
const silent = { emit: () => undefined }
let dir: string
let kubeconfig: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-deps-'))
  kubeconfig = path.join(dir, 'kubeconfig')
  await writeFile(kubeconfig, KUBECONFIG)
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('createDeps', () => {
  it('gives the same connection one cluster client, and another connection its own', () => {
    const first = createDeps({ kubeconfig }, silent).cluster
    expect(createDeps({ kubeconfig }, { emit: () => undefined }).cluster).toBe(first)
    expect(createDeps({ kubeconfig, context: 'b' }, silent).cluster).not.toBe(first)
    expect(createDeps({ kubeconfig, 'kube-qps': 7 }, silent).cluster).not.toBe(first)
  })
})
