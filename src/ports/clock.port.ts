/** Time, so tests control it. `sleep` is for backoff between retries and a wait until a known instant (a maintenance window) only; waits for the cluster are watches. */
export interface Clock {
  now(): Date
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}
