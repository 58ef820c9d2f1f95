import { waveStepCommand } from '../../step-command.js'

export default waveStepCommand('prepare', "Wave phase: annotate, cordon (and drain) the wave's nodes.")
