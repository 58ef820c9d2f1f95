/** The value of a YAML document a user gave (a file, a flag's, a policy's), refused as input when yaml will not build it. */
import { describeError, type InputError } from '../errors.js'

/**
 * The document's value. yaml refuses to expand aliases past its limit (an alias bomb, "billion
 * laughs") by throwing: the input's fault, so it is `refuse`'s InputError (exit 2), one line. Pure.
 */
export function documentValue(doc: { toJS(): unknown }, refuse: (why: string) => InputError): unknown {
  try {
    return doc.toJS()
  } catch (error) {
    throw refuse(
      `its aliases expand too far (${describeError(error).split('\n')[0]}); write the values out instead of repeating anchors`,
    )
  }
}
