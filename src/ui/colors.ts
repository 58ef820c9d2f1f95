import { Chalk, supportsColor } from 'chalk'

/** Colours only on a terminal and never when NO_COLOR is set (https://no-color.org). */
export const colors = new Chalk({
  level:
    process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '' ? 0 : supportsColor ? supportsColor.level : 0,
})
