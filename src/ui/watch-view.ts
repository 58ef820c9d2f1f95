/**
 * How `status --watch` shows its snapshots. On a terminal (not CI) one line redrawn in place, its
 * elapsed time and ETA refreshed each second from the last snapshot (a display timer: the cluster
 * is only watched); elsewhere a timestamped line per change, as `kubectl rollout status` prints.
 */
import type { WatchSnapshot } from '../lifecycle/services/status-watch.service.js'
import { formatWatchLine } from './report-format.js'

export interface WatchView {
  show(snapshot: WatchSnapshot): void
  /** The last line (the verdict); stops the redraw. */
  end(text: string): void
}

export function watchView(
  out: { write(text: string): unknown; isTTY?: boolean } = process.stdout,
  now: () => Date = () => new Date(),
): WatchView {
  if (out.isTTY !== true || process.env['CI']) {
    const line = (text: string) => out.write(`${now().toISOString()} ${text}\n`)
    return { show: (snapshot) => line(formatWatchLine(snapshot, now())), end: line }
  }
  let last: WatchSnapshot | undefined
  const draw = () => {
    if (last) out.write(`\r\u001B[2K${formatWatchLine(last, now())}`)
  }
  const ticker = setInterval(draw, 1000)
  ticker.unref()
  return {
    show(snapshot) {
      last = snapshot
      draw()
    },
    end(text) {
      clearInterval(ticker)
      out.write(`${last ? '\n' : ''}${text}\n`)
    },
  }
}
