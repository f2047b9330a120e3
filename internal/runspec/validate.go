package runspec

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/launch-hpc/launch/internal/mountplan"
)

// check is one named rule of a Spec. Its error is one line that names the
// option at fault.
type check struct {
	name string
	run  func(*Spec) error
}

// checks are the rules of a Spec, in the order Validate applies them: the
// first that fails is the one reported.
var checks = []check{
	{"mode", checkMode},
	{"--app", checkApp},
	{"namespaces", checkNamespaces},
	{"user binds", checkUserBinds},
	{"--scratch", checkScratch},
	{"--writable", checkWritable},
	{"--overlay", checkOverlays},
	{"--home", checkHome},
	{"--pwd", checkPwd},
	{"--device", checkDevices},
}

// Validate applies every check to s, in order, and returns the first
// failure. It touches nothing: what needs the host (the image, bind sources,
// directories) is checked when the container is prepared.
func (s *Spec) Validate() error {
	if s.Site == nil {
		return errors.New("run specification without a site configuration")
	}
	for _, c := range checks {
		if err := c.run(s); err != nil {
			return err
		}
	}
	return nil
}

// checkMode: the command is one of exec, run and shell.
func checkMode(s *Spec) error {
	switch s.Mode {
	case ModeExec, ModeRun, ModeShell, ModeTest:
		return nil
	}
	return fmt.Errorf("unknown run mode %q (known: exec, run, shell, test)", s.Mode)
}

// checkNamespaces refuses namespaces the site switched off.
func checkNamespaces(s *Spec) error {
	via := func(flag string) string {
		if s.ContainAll && (flag == "--pid" || flag == "--ipc") {
			return flag + " (from --containall)"
		}
		return flag
	}
	ns, allow := s.Namespaces, s.Site.Namespaces
	for _, c := range []struct {
		want, allowed bool
		flag, key     string
	}{
		{ns.PID, allow.AllowPID, "--pid", "allow_pid"},
		{ns.IPC, allow.AllowIPC, "--ipc", "allow_ipc"},
		{ns.Net, allow.AllowNet, "--net", "allow_net"},
		{ns.UTS, allow.AllowUTS, "--uts/--hostname", "allow_uts"},
	} {
		if c.want && !c.allowed {
			return fmt.Errorf("%s is switched off on this site (launch.conf namespaces.%s = false)", via(c.flag), c.key)
		}
	}
	return nil
}

// checkUserBinds refuses user binds where the site switched them off.
// (Their destinations were checked when they were parsed, by
// mountplan.ParseBinds and ParseMount; their sources are on the host.)
func checkUserBinds(s *Spec) error {
	if len(s.Binds) > 0 && !s.Site.Binds.AllowUser {
		b := s.Binds[0]
		return fmt.Errorf("%s %s: user binds are switched off on this site (launch.conf binds.allow_user = false)", b.Origin, b)
	}
	return nil
}

// checkScratch checks the --scratch destinations.
func checkScratch(s *Spec) error {
	for _, d := range s.Scratch {
		if err := mountplan.CheckDest(d); err != nil {
			return fmt.Errorf("--scratch %s: %w", d, err)
		}
	}
	return nil
}

// checkWritable: --writable writes into the sandbox itself, so it has no
// layer over the image. (That the image is a sandbox is known only once it
// is opened.)
func checkWritable(s *Spec) error {
	if s.Writable && (s.WritableTmpfs || len(s.Overlays) > 0) {
		return errors.New("--writable writes into the sandbox itself and cannot be combined with --writable-tmpfs or --overlay")
	}
	return nil
}

// checkOverlays: each directory once, at most one writable layer.
func checkOverlays(s *Spec) error {
	seen := map[string]bool{}
	rw := ""
	for _, o := range s.Overlays {
		if seen[o.Dir] {
			return fmt.Errorf("--overlay %s: the same directory is given twice", o.Dir)
		}
		seen[o.Dir] = true
		if o.ReadOnly {
			continue
		}
		if rw != "" {
			return fmt.Errorf("--overlay %s: only one writable overlay is possible (%s is one already; add :ro to stack it read-only)", o.Dir, rw)
		}
		if s.WritableTmpfs {
			return fmt.Errorf("--overlay %s: a writable overlay and --writable-tmpfs both ask for the top layer; add :ro to stack it below", o.Dir)
		}
		rw = o.Dir
	}
	return nil
}

// checkHome: -H and --no-home contradict, and -H is a user bind.
func checkHome(s *Spec) error {
	if s.Home == nil {
		return nil
	}
	if s.NoHome {
		return errors.New("--home and --no-home contradict each other")
	}
	if !s.Site.Binds.AllowUser {
		return fmt.Errorf("--home %s: user binds are switched off on this site (launch.conf binds.allow_user = false)", s.Home.Flag)
	}
	return nil
}

// checkPwd: --pwd is a path inside, absolute.
func checkPwd(s *Spec) error {
	if s.Pwd != "" && !filepath.IsAbs(s.Pwd) {
		return fmt.Errorf("--pwd %s is not an absolute path", s.Pwd)
	}
	return nil
}
