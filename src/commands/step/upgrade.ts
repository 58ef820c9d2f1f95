import { waveStepCommand } from '../../step-command.js'

export default waveStepCommand('upgrade', "Wave phase: roll the new kata-deploy onto the wave's nodes and wait for it.")
