/** The fleet policy on the command line: where it is looked for, and the flags it fills in. */
import { Flags } from '@oclif/core'
import { readFile } from 'node:fs/promises'
import { createDeps, type ConnectionOptions } from './deps.js'
import { InputError } from './lifecycle/errors.js'
import { checkNamespace } from './lifecycle/checks/names.js'
import { policyVerificationPod, withPolicy } from './lifecycle/policy/policy.js'
import { DEFAULT_POLICY_NAMESPACE, setting } from './lifecycle/settings/settings.js'
import { findPolicy, type FoundPolicy } from './lifecycle/services/policy.service.js'
import { parsePoolsFile, poolsOf, type Pool } from './lifecycle/run/pools.js'

export const policyFlags = {
  policy: Flags.string({ description: setting('policy').help, helpGroup: 'POLICY' }),
  'no-policy': Flags.boolean({
    description: setting('no-policy').help,
    default: false,
    helpGroup: 'POLICY',
    exclusive: ['policy'],
  }),
  'policy-namespace': Flags.string({
    description: setting('policy-namespace').help,
    default: DEFAULT_POLICY_NAMESPACE,
    helpGroup: 'POLICY',
    // Checked as it is parsed, before anything else: a name the API server would refuse is never sent.
    parse: async (name) => {
      checkNamespace('--policy-namespace', name)
      return name
    },
  }),
}

/** Reads a file a flag names; an InputError naming the flag when it cannot. */
export async function readFlagFile(flag: string, path: string): Promise<string> {
  return readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(flag, `cannot read ${path}: ${error.code ?? error.message}`)
  })
}

export interface WithPolicy<F> {
  flags: F
  /** Where each flag's value came from when the policy set it (for errors naming the field). */
  origins: Record<string, string>
  found: FoundPolicy
  /** The verification pod: --verification-pod's file, else the policy's; undefined when neither has one. */
  verification?: { source: string; origin: string }
}

/**
 * The flags with the policy filled in where the command line gave none. `parsed.metadata` says which
 * flags oclif set from their defaults; `defined` are the command's flags.
 */
export async function applyPolicy<
  F extends ConnectionOptions & { policy?: string | undefined; 'no-policy': boolean; 'policy-namespace': string },
>(
  parsed: { flags: F; metadata: { flags: Record<string, { setFromDefault?: boolean }> } },
  defined: Record<string, unknown>,
): Promise<WithPolicy<F>> {
  const { flags } = parsed
  const file = flags.policy ? { path: flags.policy, text: await readFlagFile('--policy', flags.policy) } : undefined
  const found: FoundPolicy = await findPolicy(() => createDeps(flags, { emit: () => undefined }).cluster, {
    ...(file ? { file } : {}),
    namespace: flags['policy-namespace'],
    off: flags['no-policy'],
  })
  const given = new Set(Object.keys(flags).filter((name) => parsed.metadata.flags[name]?.setFromDefault !== true))
  const merged = withPolicy(flags, { given, defined: new Set(Object.keys(defined)) }, found.source)
  const podFile = (flags as { 'verification-pod'?: string })['verification-pod']
  const policyPod = policyVerificationPod(found.source?.policy)
  const verification = podFile
    ? { source: await readFlagFile('--verification-pod', podFile), origin: podFile }
    : policyPod
      ? { source: policyPod, origin: `${found.source!.origin}: verification.pod` }
      : undefined
  // No usable kubeconfig: the given pod lets the command check its flags first, then fail on this
  // error where it needs the cluster; without one, this error, not "no verification pod", is the answer.
  if (found.noCluster !== undefined && !verification) throw found.noCluster
  return { ...merged, found, ...(verification ? { verification } : {}) }
}

/** The run's node pools: `--pools FILE`'s, else the policy's; undefined when neither has any. */
export async function poolsFrom(
  flags: { pools?: string | undefined },
  found: FoundPolicy,
): Promise<Pool[] | undefined> {
  if (flags.pools) return parsePoolsFile(await readFlagFile('--pools', flags.pools), `--pools ${flags.pools}`)
  const specs = found.source?.policy.pools
  return specs ? poolsOf(specs, found.source!.origin) : undefined
}
