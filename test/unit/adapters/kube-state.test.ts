import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { toStoredRelease } from '../../../src/adapters/kube-state.adapter.js'

/** A storage Secret's `release` data as the API returns it: base64 of helm's base64 of its (gzipped) JSON. */
function secretData(release: unknown, gzip = true): string {
  const json = Buffer.from(JSON.stringify(release))
  const helmEncoded = (gzip ? gzipSync(json) : json).toString('base64')
  return Buffer.from(helmEncoded).toString('base64')
}

const RELEASE = {
  name: 'kata-deploy',
  namespace: 'kube-system',
  version: 4,
  info: {
    status: 'deployed',
    first_deployed: '2026-12-01T10:00:00.123456789Z',
    last_deployed: '2026-12-05T19:28:46.5Z',
  },
  chart: { metadata: { name: 'kata-deploy', version: '3.28.0', appVersion: '3.28.0' } },
  manifest: '---\n# many templates',
}

describe('toStoredRelease', () => {
  it("reads what `helm get metadata` prints and the install's first_deployed", () => {
    expect(toStoredRelease(secretData(RELEASE), 'kata-deploy', 'kube-system')).toEqual({
      release: {
        name: 'kata-deploy',
        namespace: 'kube-system',
        revision: 4,
        status: 'deployed',
        chartName: 'kata-deploy',
        chartVersion: '3.28.0',
        appVersion: '3.28.0',
        deployedAt: '2026-12-05T19:28:46.5Z',
      },
      firstDeployed: '2026-12-01T10:00:00.123456789Z',
    })
  })

  it('takes JSON helm stored without gzip too, and leaves out what it does not hold', () => {
    const bare = { version: 1, info: { status: 'pending-install' }, chart: { metadata: { version: '3.27.0' } } }
    expect(toStoredRelease(secretData(bare, false), 'kd', 'ns')).toEqual({
      release: {
        name: 'kd',
        namespace: 'ns',
        revision: 1,
        status: 'pending-install',
        chartName: '',
        chartVersion: '3.27.0',
        appVersion: '',
      },
    })
  })
})
