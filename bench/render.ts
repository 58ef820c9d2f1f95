// Re-renders the markdown of a results JSON: npx tsx bench/render.ts bench/results/<stamp>.json
import { readFile, writeFile } from 'node:fs/promises'
import type { Results } from './bench.js'
import { renderMarkdown } from './lib/report.js'

const file = process.argv[2]
if (!file?.endsWith('.json')) throw new Error('usage: npx tsx bench/render.ts bench/results/<stamp>.json')
const results = JSON.parse(await readFile(file, 'utf8')) as Results
await writeFile(file.replace(/\.json$/, '.md'), renderMarkdown(results))
