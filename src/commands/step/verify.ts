import { waveStepCommand } from '../../step-command.js'

export default waveStepCommand(
  'verify',
  'Wave phase: run the verification pod on each node; complete the nodes that pass.',
)
