package container

import (
	"errors"
	"strings"

	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/preinit"
	"github.com/launch-hpc/launch/internal/runspec"
	"github.com/launch-hpc/launch/internal/timeline"
)

// Run checks spec (runspec.Spec.Validate), then runs the container for it and returns
// the exit status the launcher should exit with: the payload's own, or
// 128+N when it died of signal N. An error means the container could not be
// started at all.
//
// It first prepares the container's Config (prepare: everything about the
// run that needs the host, checked before any container exists). When pre
// says this process is already in its own user and mount namespaces and
// the spec asks for no other namespace, the container is built right here
// (runHere). Otherwise a stage is re-executed in new namespaces (new user
// and mount namespaces, unless pre made them already, plus those asked
// for); this process forwards signals to it and waits.
func Run(spec *runspec.Spec, pre preinit.Result) (int, error) {
	if len(spec.Overlays) > 0 {
		MarkReadOnlyImages(spec, msg.Stderr(msg.Level(spec.LogLevel)))
	}
	if err := spec.Validate(); err != nil {
		return 0, err
	}
	if name, ok := strings.CutPrefix(spec.Image, InstanceScheme); ok {
		return joinInstance(spec, name, pre) // join_linux.go
	}
	cfg, err := prepare(spec)
	if err != nil {
		return 0, err
	}
	if pre.Done {
		timeline.FromEnv("stage").Mark("resolved")
	}
	if pre.Done && cfg.Fakeroot != nil {
		// internal/preinit leaves --fakeroot command lines alone; this one
		// reached it some other way.
		return 0, errors.New("--fakeroot: this launch already runs in a user namespace of its own (" +
			"give --fakeroot on the command line, or set LAUNCH_PREINIT=0)")
	}
	if spec.ShareNS {
		return runShared(spec, cfg, pre) // sharens_linux.go
	}
	if pre.Done && !cfg.Namespaces.Extra() {
		return runHere(cfg, pre)
	}
	return runStage(cfg, pre)
}
