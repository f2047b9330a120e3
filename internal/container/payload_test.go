package container

import (
	"testing"

	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/mountplan"
)

func TestPayloadEnvContainerVars(t *testing.T) {
	cfg := &Config{Cwd: "/work/u", Mode: ModeExec, Env: []string{"APPTAINER_CONTAINER=/outer.sif", "PATH=/bin"}}
	cfg.Image.Path = "imgs/../app.sif"
	cfg.Plan.Ops = []mountplan.Op{
		{Name: "home", Kind: mountplan.Bind, Source: "/home/u", Dest: "/home/u"},
		{Name: mountplan.UserBind, Kind: mountplan.Bind, Source: "/data", Dest: "/d"},
		{Name: mountplan.UserBind, Kind: mountplan.Bind, Source: "/scratch", Dest: "/scratch"},
	}
	env := payloadEnv(cfg)
	for k, v := range map[string]string{
		"APPTAINER_CONTAINER": "/work/u/app.sif", "SINGULARITY_CONTAINER": "/work/u/app.sif", "LAUNCH_CONTAINER": "/work/u/app.sif",
		"APPTAINER_NAME": "app.sif", "SINGULARITY_NAME": "app.sif", "LAUNCH_NAME": "app.sif",
		"APPTAINER_BIND": "/d,/scratch", "SINGULARITY_BIND": "/d,/scratch", "APPTAINER_COMMAND": "exec",
		"APPTAINER_ENVIRONMENT": "/.singularity.d/env/91-environment.sh", "PS1": "",
	} {
		if got := environ.Get(env, k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
}
