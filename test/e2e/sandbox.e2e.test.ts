/**
 * The sandbox as README.md gives it: `scripts/sandbox.sh up`, the KUBECONFIG and PATH it prints, then
 * the three commands exactly as written. Its own cluster (KATA_LCM_SANDBOX), removed at the end.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { run } from './harness/cluster.js'

const NAME = `kata-lcm-sandbox-e2e-${randomBytes(3).toString('hex')}`
const env = { ...process.env, KATA_LCM_SANDBOX: NAME, CI: 'true', NO_COLOR: '1' }

afterAll(async () => {
  await run('bash', ['scripts/sandbox.sh', 'down'], { env })
})

describe('the sandbox', () => {
  it('after sandbox.sh up: kata-lcm upgrade --target-version 3.28.0 --batch-size 2, kata-lcm rollback worker-1, kata-lcm install-workflow', async () => {
    const up = await run('bash', ['scripts/sandbox.sh', 'up'], { env })
    expect(up.code, up.stderr).toBe(0)
    const exported = /export (KUBECONFIG=\S+) (PATH=\S+)/.exec(up.stdout)
    expect(exported, up.stdout).not.toBeNull()
    const kubeconfig = exported![1]!.slice('KUBECONFIG='.length)
    const path = exported![2]!.slice('PATH='.length).replace('$PATH', process.env.PATH ?? '')
    const shell = (command: string) =>
      run('bash', ['-c', command], { env: { ...env, KUBECONFIG: kubeconfig, PATH: path } })
    // Each command exactly as README.md and the sandbox print it.
    for (const command of [
      'kata-lcm upgrade --target-version 3.28.0 --batch-size 2',
      'kata-lcm rollback worker-1',
      'kata-lcm install-workflow',
    ]) {
      const r = await shell(command)
      expect(r.code, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0)
    }
    // README's quickstart starts with init: the sandbox's kata-deploy has its RuntimeClasses.
    const init = await shell('cd "$(mktemp -d)" && kata-lcm init && ls')
    expect(init.code, `${init.stdout}\n${init.stderr}`).toBe(0)
    expect(init.stdout).toMatch(/verify-kata-qemu-runtime-rs\.yaml/)
    const status = await shell('kata-lcm status --json')
    const rows = (JSON.parse(status.stdout) as { rows: { node: string; status: string; version: string }[] }).rows
    expect(rows.map((r) => [r.node, r.status, r.version])).toEqual([
      ['worker-1', 'rolled-back', '3.27.0'],
      ['worker-2', 'completed', '3.28.0'],
      ['worker-3', 'completed', '3.28.0'],
    ])
    const template = await shell('kubectl get workflowtemplate -n argo kata-lifecycle-manager -o name')
    expect(template.stdout.trim()).toBe('workflowtemplate.argoproj.io/kata-lifecycle-manager')
  })
})
