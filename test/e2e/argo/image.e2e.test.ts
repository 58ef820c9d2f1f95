/**
 * The kata-lcm image built without a registry (scripts/image/build-local.sh kata-lcm) against the
 * Dockerfile: one recipe (scripts/image/app.sh) lays out the image's files in both, and the local
 * build takes ENV, WORKDIR, USER and ENTRYPOINT from the Dockerfile's final stage. This checks
 * that it stays so: the Dockerfile's final stage copies only that tree, and the local image has
 * the Dockerfile's config and the files the chart's steps run; and the code cache built into it
 * is the one its steps start from.
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT, run } from '../harness/cluster.js'

const exec = promisify(execFile)

async function tarFile(archive: string, member: string): Promise<Buffer> {
  const { stdout } = await exec('tar', ['-xOf', archive, member], { encoding: 'buffer', maxBuffer: 1 << 30 })
  return stdout
}

/** The Dockerfile's last stage, one instruction a line. */
async function finalStage(): Promise<string[]> {
  const text = (await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ')
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const from = lines
    .map((l, i) => (l.startsWith('FROM ') ? i : -1))
    .filter((i) => i >= 0)
    .at(-1)!
  return lines.slice(from)
}

interface LocalImage {
  ref: string
  index: { manifests: { digest: string; annotations: Record<string, string> }[] }
  manifest: { config: { digest: string }; layers: { digest: string }[] }
  blob: (digest: string) => Promise<Buffer>
}

let built: Promise<LocalImage> | undefined
/** scripts/image/build-local.sh kata-lcm, once (a rerun with nothing changed is a cache hit). */
function localImage(): Promise<LocalImage> {
  return (built ??= (async () => {
    const r = await run('bash', [path.join(REPO_ROOT, 'scripts/image/build-local.sh'), 'kata-lcm'], { stream: true })
    if (r.code !== 0) throw new Error(`build-local.sh kata-lcm exited ${r.code}`)
    const [ref, archive] = r.stdout.trim().split(' ') as [string, string]
    const blob = async (digest: string) => tarFile(archive, `blobs/sha256/${digest.replace('sha256:', '')}`)
    const index = JSON.parse((await tarFile(archive, 'index.json')).toString()) as LocalImage['index']
    const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as LocalImage['manifest']
    return { ref, index, manifest, blob }
  })())
}

const POD =
  'apiVersion: v1\nkind: Pod\nmetadata: {name: verify}\nspec: {nodeName: "${NODE}", containers: [{name: c, image: busybox}]}\n'

describe('kata-lcm image (local build) vs the Dockerfile', () => {
  it("has the Dockerfile's ENV, WORKDIR, USER and ENTRYPOINT and the app tree scripts/image/app.sh lays out, without dev dependencies", async () => {
    const stage = await finalStage()
    // The final stage only copies app.sh's tree (and sets the config checked below).
    expect(stage.filter((l) => l.startsWith('COPY ') || l.startsWith('RUN ') || l.startsWith('ADD '))).toEqual([
      'COPY --from=build /out/ /',
    ])
    const dockerfile = await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')
    expect(dockerfile).toContain('RUN sh /app.sh assemble /src /out')

    const { ref, index, manifest, blob } = await localImage()
    expect(ref).toMatch(/^kata-lcm\.local\/kata-lcm:local-[0-9a-f]{16}$/)
    expect(index.manifests[0]!.annotations['io.containerd.image.name']).toBe(ref)
    const config = JSON.parse((await blob(manifest.config.digest)).toString()) as {
      config: { Env: string[]; WorkingDir: string; User: string; Entrypoint: string[] }
    }

    const env = stage.filter((l) => l.startsWith('ENV ')).map((l) => l.slice(4))
    expect(env.length).toBeGreaterThan(0)
    for (const e of env) expect(config.config.Env).toContain(e)
    expect(config.config.WorkingDir).toBe(stage.find((l) => l.startsWith('WORKDIR '))!.slice(8))
    expect(config.config.User).toBe(stage.find((l) => l.startsWith('USER '))!.slice(5))
    expect(config.config.Entrypoint).toEqual(JSON.parse(stage.find((l) => l.startsWith('ENTRYPOINT '))!.slice(11)))

    // Two layers: the base (Debian + node), the app tree.
    expect(manifest.layers).toHaveLength(2)
    const appLayer = await blob(manifest.layers[1]!.digest)
    const list = execFileSync('tar', ['-t'], { input: appLayer, encoding: 'utf8', maxBuffer: 1 << 28 })
    const files = new Set(list.split('\n').map((f) => f.replace(/^\.\//, '')))
    for (const f of [
      'usr/local/bin/kata-lcm',
      'usr/local/bin/helm',
      'opt/kata-lcm/package.json',
      'opt/kata-lcm/oclif.manifest.json',
      'opt/kata-lcm/bin/run.js',
      'opt/kata-lcm/dist/commands/step/plan.js',
      'opt/kata-lcm/chart/Chart.yaml',
      'opt/kata-lcm/node_modules/@kubernetes/client-node/package.json',
    ]) {
      expect(files, f).toContain(f)
    }
    // Dev-only packages are pruned (some devDependencies, e.g. @types/node, are also needed by a
    // production dependency and stay, as in the Dockerfile's image).
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>
    }
    for (const dev of ['typescript', 'vitest', 'eslint', 'oclif', 'tsx']) {
      expect(Object.keys(pkg.devDependencies)).toContain(dev)
      expect(files, dev).not.toContain(`opt/kata-lcm/node_modules/${dev}/package.json`)
    }
  })

  // chroot and the switch to the image's user need root, as the image build itself does
  // (debootstrap), so this runs wherever the build above does.
  it("starts from the code cache built into it: run in the image's root as its user, a step loads every module it compiled at build time from the cache", async () => {
    const { manifest, blob } = await localImage()
    const root = await mkdtemp(path.join(tmpdir(), 'kata-lcm-image-root-'))
    try {
      for (const layer of manifest.layers) {
        await new Promise<void>((resolve, reject) => {
          const tar = spawn('tar', ['-x', '-C', root], { stdio: ['pipe', 'ignore', 'inherit'] })
          tar.on('error', reject)
          tar.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited ${code}`))))
          void blob(layer.digest).then((b) => tar.stdin.end(b), reject)
        })
      }
      // The image's entrypoint as the image's user (1000), the plan step's command with a kubeconfig
      // that is not there: its flags and verification pod are read, then it stops before any request.
      const r = await run('chroot', [
        '--userspec=1000:1000',
        root,
        ...['/usr/bin/env', '-i', 'PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/tmp', 'NODE_DEBUG_NATIVE=COMPILE_CACHE'],
        ...['/usr/local/bin/kata-lcm', 'step', 'plan', '--kubeconfig', '/nonexistent', '--target-version', '3.28.0'],
        ...['--holder', 'image-test', '--verification-pod-b64', Buffer.from(POD).toString('base64')],
      ])
      expect(r.stderr).toContain('--kubeconfig: cannot load /nonexistent')
      const lines = r.stderr.split('\n')
      const read = lines.filter((l) => l.startsWith('[compile cache] reading cache from '))
      const accepted = lines
        .map((l) => /^\[compile cache\] V8 code cache for \S+ (\S+) was accepted/.exec(l)?.[1])
        .filter((f): f is string => f !== undefined)
      // Every module looked up was found and accepted: nothing compiled afresh, nothing rejected.
      expect(read.filter((l) => !/\.\.\. success, size=\d+$/.test(l))).toEqual([])
      expect(read.length).toBeGreaterThan(100)
      expect(accepted.length).toBeGreaterThanOrEqual(read.length)
      expect(lines.filter((l) => /^\[compile cache\].*(reject|fail|mismatch|disabled)/i.test(l))).toEqual([])
      expect(accepted).toContain('file:///opt/kata-lcm/dist/commands/step/plan.js')
      expect(accepted.filter((f) => f.startsWith('file:///opt/kata-lcm/dist/chunks/')).length).toBeGreaterThan(0)
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
})
