// Package jobenv knows the batch job a process runs in: the batch
// systems' job variables, and (jobenv_linux.go) the Slurm job step's
// slurmstepd among the process's ancestors, read from /proc/PID/stat.
// It is the one place for both: internal/share puts the job into a
// rendezvous scope, internal/container bounds a warm mount by the job,
// internal/instance anchors an instance to it.
package jobenv

// SlurmJob is Slurm's job variable: set, the job step's slurmstepd is an
// ancestor whose end ends what belongs to the step.
const SlurmJob = "SLURM_JOB_ID"

// ScopeVars are the batch systems' job (and step) variables that name a
// kill domain: Slurm, PBS/Torque, LSF, Flux, Grid Engine. A fresh slice
// each call.
func ScopeVars() []string {
	return []string{SlurmJob, "SLURM_STEP_ID", "PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID", "JOB_ID"}
}

// Unwatched returns, outside a Slurm job, the first job variable that is
// set of a batch system whose job end launch cannot watch (PBS/Torque,
// LSF, Flux, Grid Engine), or "": a process that must not outlive its job
// cannot be left behind there.
func Unwatched(getenv func(string) string) string {
	if getenv(SlurmJob) != "" {
		return ""
	}
	for _, v := range []string{"PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID", "JOB_ID"} {
		if getenv(v) != "" {
			return v
		}
	}
	return ""
}
