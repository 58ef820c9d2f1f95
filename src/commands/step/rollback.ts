import { waveStepCommand } from '../../step-command.js'

export default waveStepCommand(
  'rollback',
  "Wave phase: roll back the wave's failed nodes; fails the step (and stops later waves) if there were any.",
)
