import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { linesTo, PlainProgress } from '../../../src/ui/plain-progress.js'

describe('linesTo', () => {
  it('writes the lines of one turn of the event loop as one write, in order', async () => {
    const out = new PassThrough()
    const writes: string[] = []
    out.on('data', (chunk: Buffer) => writes.push(chunk.toString()))
    const progress = new PlainProgress(linesTo(out))
    for (const node of ['n1', 'n2', 'n3']) progress.emit({ type: 'node-status', node, status: 'cordoned' })
    expect(writes).toEqual([])
    await new Promise((resolve) => setImmediate(resolve))
    progress.emit({ type: 'info', message: 'later' })
    await new Promise((resolve) => setImmediate(resolve))
    expect(writes).toHaveLength(2)
    expect(writes[0]!.split('\n').map((l) => l.replace(/^\S+ /, ''))).toEqual([
      '  n1: cordoned',
      '  n2: cordoned',
      '  n3: cordoned',
      '',
    ])
    expect(writes[1]).toMatch(/^\S+ later\n$/)
  })
})
