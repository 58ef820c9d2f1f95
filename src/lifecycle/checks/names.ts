import type { ReleaseRef } from '../context.js'
import { InputError } from '../errors.js'

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** Throws an InputError naming `flag` unless `name` is a Kubernetes namespace name (RFC 1123 label, <= 63). Pure. */
export function checkNamespace(flag: string, name: string): void {
  if (name.length > 63 || !DNS_LABEL.test(name)) {
    throw new InputError(
      flag,
      `"${name}" is not a namespace name; use at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit (e.g. kube-system)`,
    )
  }
}

/** Throws an InputError naming `flag` unless `name` is a helm release name (lower-case RFC 1123 subdomain, <= 53). Pure. */
export function checkReleaseName(flag: string, name: string): void {
  if (name.length > 53 || !DNS_SUBDOMAIN.test(name)) {
    throw new InputError(
      flag,
      `"${name}" is not a helm release name; use at most 53 lower-case letters, digits, "-" and ".", starting and ending with a letter or digit (e.g. kata-deploy)`,
    )
  }
}

/** The global --helm-release / --helm-namespace flags, checked before anything is read. Pure. */
export function checkReleaseRef(release: ReleaseRef): void {
  checkReleaseName('--helm-release', release.name)
  checkNamespace('--helm-namespace', release.namespace)
}
