import { waveStepCommand } from '../../step-command.js'

export default waveStepCommand(
  'wave',
  "A whole wave in one pod (the chart's onePodPerWave): prepare, upgrade, verify and rollback, as kata-lcm upgrade runs a wave; with --pod, several waves one after another (the chart's wavesPerPod).",
)
