/**
 * oclif's command_not_found hook: a mistyped command is refused (exit 127) with the nearest one
 * named, and nothing runs. @oclif/plugin-not-found asked "Did you mean upgrade? (Y/n)" on a terminal
 * and ran the suggestion on Enter: a mutating command on a default answer.
 */
import { toConfiguredId, type Hook } from '@oclif/core'

/** Edits (insert, delete, substitute) that turn `a` into `b`. Pure. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    previous = row
  }
  return previous[b.length]!
}

/** The id nearest to `typed` (the first of equals, in the order given); undefined when there is none. Pure. */
export function nearestCommand(typed: string, ids: readonly string[]): string | undefined {
  let best: { id: string; distance: number } | undefined
  for (const id of ids) {
    const distance = editDistance(typed, id)
    if (!best || distance < best.distance) best = { id, distance }
  }
  return best?.id
}

/** Refuses the command line, naming the nearest command; never runs one. */
const hook: Hook.CommandNotFound = async function (options) {
  const { config, id } = options
  const hidden = new Set(config.commands.filter((c) => c.hidden).map((c) => c.id))
  const ids = [...config.commandIDs, ...config.commands.flatMap((c) => c.aliases)].filter((c) => !hidden.has(c))
  const nearest = nearestCommand(id, ids)
  const suggestion = nearest ? ` Did you mean ${toConfiguredId(nearest, config)}?` : ''
  this.error(
    `${toConfiguredId(id, config)} is not a ${config.bin} command.${suggestion} Run ${config.bin} help for a list of available commands.`,
    { exit: 127 },
  )
}

export default hook
