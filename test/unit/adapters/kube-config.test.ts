import { describe, expect, it } from 'vitest'
import { keyText } from '../../../src/adapters/kube-config.js'

describe('keyText (the key of a shared connection pool)', () => {
  const options = (key: string) => ({
    type: 'agent',
    connect: { ca: Buffer.from('ca'), key: Buffer.from(key), keepAlive: true, servername: undefined },
  })

  it('is equal for equal options, each read afresh (new Buffers)', () => {
    expect(keyText(['https://a:6443', options('k1')])).toBe(keyText(['https://a:6443', options('k1')]))
  })

  it('differs when a credential, the server or a setting differs', () => {
    const base = keyText(['https://a:6443', options('k1')])
    expect(keyText(['https://a:6443', options('k2')])).not.toBe(base)
    expect(keyText(['https://b:6443', options('k1')])).not.toBe(base)
    expect(keyText(['https://a:6443', { ...options('k1'), type: 'proxy' }])).not.toBe(base)
  })

  it('tells a Buffer from the text of its base64', () => {
    expect(keyText(Buffer.from('x'))).not.toBe(keyText(Buffer.from('x').toString('base64')))
  })
})
