import type { UpgradeFlags } from '../../src/flags.js'

/** `kata-lcm upgrade`'s flags as oclif hands them over with only --target-version given: the defaults. */
export const UPGRADE_FLAGS: UpgradeFlags = {
  'target-version': '3.28.0',
  chart: 'kata-deploy',
  'batch-size': '1',
  'deployment-mode': 'auto',
  drain: false,
  'drain-timeout': '5m',
  'drain-force': false,
  'drain-delete-emptydir-data': false,
  'verification-namespace': 'default',
  'verification-timeout': '180s',
  'ready-timeout': '5m',
  'helm-timeout': '10m',
  'helm-release': 'kata-deploy',
  'helm-namespace': 'kube-system',
}
