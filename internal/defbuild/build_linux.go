package defbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/deffile"
	"github.com/launch-hpc/launch/internal/fakeroot"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// Options say what to build and how.
type Options struct {
	// Def is the parsed definition file.
	Def *deffile.Definition
	// Out is the SIF (or, with Sandbox, the directory) to make.
	Out string
	// Sandbox makes a directory instead of a SIF.
	Sandbox bool
	// Force replaces an existing Out.
	Force bool
	// NoTest skips %test.
	NoTest bool
	// Fakeroot runs %post as uid 0 (`launch exec --fakeroot`): the
	// tree's files, the user's on the host, are root's inside.
	Fakeroot bool
	// Binds are `launch exec --bind` values (SRC:DST[:ro]) for the
	// containers of %post and %test (`launch build --bind`).
	Binds []string
	// FakerootTools are the helpers of Fakeroot (launch.conf tools).
	FakerootTools fakeroot.Tools
	// Pack are the options of the packing (and unpacking) steps: Log,
	// Compression, Mksquashfs, Unsquashfs, ToolOutput. Source, Out and
	// Force are set by Build.
	Pack build.Options
	// Launch is the launch binary that runs %post and %test in the tree
	// (`launch exec`).
	Launch string
	// OCI builds the SIF out from the OCI source (docker://..., oci:...,
	// oci-archive:..., docker-archive:...), through the launch-oci helper.
	OCI func(ctx context.Context, out, source string) error
	// Stdout and Stderr receive the output of the scripts.
	Stdout, Stderr io.Writer
	// Now is the build time for the labels (zero: time.Now).
	Now time.Time
}

// builder runs the steps of one build.
type builder struct {
	o     Options
	tmp   string         // the private temporary directory
	trees []string       // each stage's tree, once bootstrapped
	fake  *fakeroot.Maps // the fakeroot maps with subordinate ranges of a --fakeroot build by a user
}

// Build builds o.Def into o.Out. Whatever happens, it leaves the finished
// output or nothing: the stage trees live in one locked temporary directory
// (swept by the next build if this one is killed) and the output is renamed
// into place when complete.
func Build(ctx context.Context, o Options) error {
	steps, err := Plan(o.Def, PlanOptions{NoTest: o.NoTest})
	if err != nil {
		return err
	}
	if err := build.CheckOut(o.Out, o.Force, o.Sandbox); err != nil {
		return err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	var fake *fakeroot.Maps
	if o.Fakeroot && os.Geteuid() != 0 {
		// With subordinate ranges the tree gets files of other ids:
		// packed (and, if need be, removed) in the same namespace.
		m, err := fakeroot.ForMe(o.FakerootTools)
		if err != nil {
			return err
		}
		if m.Ranges() {
			if err := m.Check(); err != nil {
				return err
			}
			fake = m
		}
	}
	build.SweepStale(build.TmpDir(), o.Out, o.Pack.Log)
	out := filepath.Clean(o.Out)
	parent, kind := build.TmpDir(), tmptree.KindBuild
	if o.Sandbox { // next to the output, so that it is renamed into place
		parent, kind = filepath.Dir(out), tmptree.Hidden(filepath.Base(out))
	}
	tmp, err := tmptree.MkdirTemp(parent, kind)
	if err != nil {
		return fmt.Errorf("%w (set LAUNCH_TMPDIR)", err)
	}
	defer tmp.Remove()
	b := &builder{o: o, tmp: tmp.Path, trees: make([]string, len(o.Def.Stages)), fake: fake}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("building %s: interrupted, temporary files removed", o.Out)
		}
		if err := b.run(ctx, s); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("building %s: interrupted, temporary files removed", o.Out)
			}
			return err
		}
	}
	final := b.trees[len(b.trees)-1]
	if o.Sandbox {
		if err := build.ReplaceDir(final, out, tmp.Path, o.Force); err != nil {
			return fmt.Errorf("moving the built tree to %s: %w", o.Out, err)
		}
		return nil
	}
	po := o.Pack
	po.Source, po.Out, po.Force, po.NoSweep, po.Fakeroot = final, o.Out, o.Force, true, fake
	po.Header, po.Now = header(&o.Def.Stages[len(o.Def.Stages)-1]), o.Now
	return build.Build(ctx, po)
}

// errorf is an error at a definition-file line.
func (b *builder) errorf(line int, format string, a ...any) error {
	return &deffile.Error{File: b.o.Def.File, Line: line, Msg: fmt.Sprintf(format, a...)}
}

// run runs one step.
func (b *builder) run(ctx context.Context, s Step) error {
	st := &b.o.Def.Stages[s.Stage]
	log := b.o.Pack.Log
	switch s.Kind {
	case Pre:
		log.Infof("Running %%pre (stage %d)", s.Stage+1)
		return b.hostScript(ctx, st.Pre, "pre", "", s)
	case Bootstrap:
		log.Infof("Bootstrapping stage %d from %s %s", s.Stage+1, st.Bootstrap(), st.From())
		return b.bootstrap(ctx, s)
	case Apps:
		log.Infof("Laying out the SCIF apps of stage %d", s.Stage+1)
		return b.apps(s)
	case CopyFrom:
		log.Infof("Copying %%files from stage %s", st.Files[0].From)
		return b.copyFiles(s, b.trees[s.From])
	case Setup:
		log.Infof("Running %%setup")
		return b.hostScript(ctx, st.Setup, "setup", b.trees[s.Stage], s)
	case CopyHost:
		log.Infof("Copying %%files")
		return b.copyFiles(s, "")
	case Post:
		log.Infof("Running %%post")
		return b.post(ctx, s)
	case Metadata:
		return b.metadata(s)
	case Test:
		log.Infof("Running %%test")
		return b.test(ctx, s)
	}
	return fmt.Errorf("unknown build step %v", s.Kind)
}

// sysProcAttr makes a script die with the build.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: false}
}

// exitStatus is the exit status of a failed command, for messages.
func exitStatus(err error) string {
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return "exit status " + strconv.Itoa(ee.ExitCode())
	}
	return err.Error()
}
