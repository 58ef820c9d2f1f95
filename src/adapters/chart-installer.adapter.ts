/** The ChartInstaller port through the helm binary ($HELM_BIN or helm on PATH). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChartInstaller, ChartRelease } from '../ports/chart.port.js'
import { readHelmVersion, runHelm } from './helm-run.js'

/** Renders and installs the bundled chart with helm, on the cluster the kube flags name. */
export function helmChartInstaller(connection: {
  kubeconfig?: string | undefined
  context?: string | undefined
}): ChartInstaller {
  const bin = process.env.HELM_BIN ?? 'helm'
  const kubeFlags = [
    ...(connection.kubeconfig ? ['--kubeconfig', connection.kubeconfig] : []),
    ...(connection.context ? ['--kube-context', connection.context] : []),
  ]
  /** Runs helm with the release's values in 0600 temp files; the directory is always removed. */
  const withValues = async (c: ChartRelease, head: string[], tail: string[]) => {
    const dir = await mkdtemp(join(tmpdir(), 'kata-lcm-chart-'))
    try {
      const valuesFile = join(dir, 'values.json')
      await writeFile(valuesFile, JSON.stringify(c.values), { mode: 0o600 })
      const files = await Promise.all(
        Object.entries(c.fileValues).map(async ([key, text], i) => {
          const file = join(dir, `file-${i}`)
          await writeFile(file, text, { mode: 0o600 })
          return ['--set-file', `${key}=${file}`]
        }),
      )
      const argv = [
        ...head,
        c.release,
        c.chartDir,
        '-n',
        c.namespace,
        '-f',
        valuesFile,
        ...files.flat(),
        ...c.sets.flatMap((s) => ['--set', s]),
        ...c.setStrings.flatMap((s) => ['--set-string', s]),
        ...tail,
      ]
      return (await runHelm(bin, argv)).stdout
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  return {
    version: () => readHelmVersion(bin),
    render: (c) => withValues(c, ['template'], []),
    install: (c) => withValues(c, ['upgrade', '--install'], kubeFlags),
  }
}
