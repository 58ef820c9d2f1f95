/**
 * Lists in pages, as kubectl does (`--chunk-size 500`): a fleet's pods or nodes come in pages of
 * PAGE_SIZE, each handed over (and converted to views) as it arrives, so at most one page of full
 * API objects is held at once. The pages are one consistent snapshot (the server's continue token).
 */
import type { V1ListMeta } from '@kubernetes/client-node'

export const PAGE_SIZE = 500

export interface ListPage<K> {
  items: K[]
  metadata?: V1ListMeta
}

/** What a paged request adds to the list's own parameters. */
export interface PageParams {
  limit: number
  _continue?: string
}

/**
 * Fetches every page with `fetch` (errors are the caller's, e.g. kubeCall's ClusterErrors), hands
 * each page's items to `each` in order, and returns the snapshot's resourceVersion (for a watch).
 */
export async function listInPages<K>(
  fetch: (page: PageParams) => Promise<ListPage<K>>,
  each: (items: K[]) => void,
): Promise<{ resourceVersion: string }> {
  let token: string | undefined
  for (;;) {
    const page = await fetch({ limit: PAGE_SIZE, ...(token ? { _continue: token } : {}) })
    each(page.items)
    token = page.metadata?._continue
    if (!token) return { resourceVersion: page.metadata?.resourceVersion ?? '' }
  }
}

/** Every page's items turned into views with `toView`, in the server's order. */
export async function listViews<K, V>(
  fetch: (page: PageParams) => Promise<ListPage<K>>,
  toView: (item: K) => V,
): Promise<V[]> {
  const views: V[] = []
  await listInPages(fetch, (items) => {
    for (const item of items) views.push(toView(item))
  })
  return views
}
