/** Time, so tests control it. `sleep` is for backoff between retries only; waits are watches. */
export interface Clock {
  now(): Date
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}
