package defbuild

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/deffile"
	"github.com/launch-hpc/launch/internal/fakeroot"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/transport"
)

// bootstrap makes the stage's tree from its agent.
func (b *builder) bootstrap(ctx context.Context, s Step) error {
	st := &b.o.Def.Stages[s.Stage]
	tree := filepath.Join(b.tmp, fmt.Sprintf("stage-%d", s.Stage+1))
	agent, from := st.Bootstrap(), st.From()
	var err error
	switch agent {
	case "scratch":
		err = os.Mkdir(tree, 0o755)
	case "localimage":
		err = b.localImage(ctx, from, tree)
	case "busybox":
		mirror, _ := st.Header.Get("mirrorurl")
		err = b.busybox(tree, mirror)
	case "debootstrap":
		err = b.debootstrap(ctx, st, tree)
	default:
		prefix, ok := transport.Bootstrap(agent)
		if !ok {
			return b.errorf(s.Line, "Bootstrap: %s is not supported", agent)
		}
		if agent == "docker" {
			if ns, _ := st.Header.Get("namespace"); ns != "" {
				from = ns + "/" + from
			}
			if reg, _ := st.Header.Get("registry"); reg != "" {
				from = reg + "/" + from
			}
		}
		err = b.fromOCI(ctx, prefix+from, tree)
	}
	if err != nil {
		return b.errorf(s.Line, "Bootstrap: %s: %v", agent, err)
	}
	if err := os.Chmod(tree, 0o755); err != nil {
		return err
	}
	b.trees[s.Stage] = tree
	if err := build.WriteBase(tree); err != nil {
		return b.errorf(s.Line, "laying out %s in the image: %v", layout.Dir, err)
	}
	return nil
}

// localImage unpacks a SIF or SquashFS image (as build --sandbox does) or
// copies a directory into tree.
func (b *builder) localImage(ctx context.Context, from, tree string) error {
	img, err := image.Open(from)
	if err != nil {
		return err
	}
	if img.Format == image.FormatDir {
		src, err := os.Open(filepath.Dir(filepath.Clean(from)))
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.Open(filepath.Dir(tree))
		if err != nil {
			return err
		}
		defer dst.Close()
		return copyEntry(int(src.Fd()), filepath.Base(filepath.Clean(from)), int(dst.Fd()), filepath.Base(tree), false, from)
	}
	so := b.o.Pack
	so.Source, so.Out, so.Force, so.NoSweep = from, tree, false, true
	return build.Sandbox(ctx, so)
}

// fromOCI converts the OCI source to a SIF with the OCI helper, then
// unpacks it into tree.
func (b *builder) fromOCI(ctx context.Context, source, tree string) error {
	if b.o.OCI == nil {
		return fmt.Errorf("OCI sources are not available in this build")
	}
	sif := tree + ".sif"
	defer os.Remove(sif)
	if err := b.o.OCI(ctx, sif, source); err != nil {
		return err
	}
	so := b.o.Pack
	so.Source, so.Out, so.Force, so.NoSweep = sif, tree, false, true
	return build.Sandbox(ctx, so)
}

// busybox installs a busybox binary with its applet links: the file
// MirrorURL names when it is a local file (a path or file://), else the
// host's busybox (launch downloads nothing).
func (b *builder) busybox(tree, mirror string) error {
	bin := strings.TrimPrefix(mirror, "file://")
	if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() {
		p, lerr := exec.LookPath("busybox")
		if lerr != nil {
			return fmt.Errorf("MirrorURL %s is not a local file and there is no busybox on this host to use instead", mirror)
		}
		b.o.Pack.Log.Infof("Using the host's %s (launch does not download MirrorURL %s)", p, mirror)
		bin = p
	}
	for _, d := range []string{"bin", "etc", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyInto(tree, bin, "/bin/busybox", true); err != nil {
		return fmt.Errorf("installing %s: %w", bin, err)
	}
	out, err := exec.Command(filepath.Join(tree, "bin", "busybox"), "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", bin, err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(tree, "bin", a)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	for name, data := range map[string]string{"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "/etc/group": "root:x:0:\n"} {
		if err := build.WriteInRoot(tree, name, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// debootstrap runs the host's debootstrap into tree: as root, or, for a
// user, with --fakeroot and subordinate ranges, as root in the user's
// fakeroot namespace (debootstrap_linux.go).
func (b *builder) debootstrap(ctx context.Context, st *deffile.Stage, tree string) error {
	if os.Geteuid() != 0 && b.fake == nil {
		if !b.o.Fakeroot {
			return fmt.Errorf("debootstrap needs root: build with --fakeroot")
		}
		return fmt.Errorf("debootstrap as a user needs subordinate id ranges for --fakeroot (%s and %s have none for you): "+
			"ask your administrator for them, or build as root", fakeroot.SubUIDFile, fakeroot.SubGIDFile)
	}
	osv, _ := st.Header.Get("osversion")
	mirror, _ := st.Header.Get("mirrorurl")
	args := []string{"--variant=minbase"}
	if inc, _ := st.Header.Get("include"); inc != "" {
		args = append(args, "--include="+strings.Join(strings.FieldsFunc(inc, func(r rune) bool { return r == ' ' || r == ',' }), ","))
	}
	args = append(args, osv, tree, mirror)
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	cmd.Stdout, cmd.Stderr = b.o.Stderr, b.o.Stderr
	var err error
	if b.fake != nil {
		err = debootstrapFakeroot(cmd, b.fake)
	} else {
		cmd.SysProcAttr = sysProcAttr()
		err = cmd.Run()
	}
	if err != nil {
		return fmt.Errorf("debootstrap %s: %s", strings.Join(args, " "), exitStatus(err))
	}
	return nil
}

// hostScript runs a %pre or %setup section on the host with the rootfs
// variables set (tree "" for %pre, which has none yet).
func (b *builder) hostScript(ctx context.Context, s deffile.Script, name, tree string, step Step) error {
	path := filepath.Join(b.tmp, name+".script")
	if err := os.WriteFile(path, []byte(s.Body), 0o700); err != nil {
		return err
	}
	defer os.Remove(path)
	argv, err := s.Command(path)
	if err != nil {
		return b.errorf(step.Line, "%%%s: %v", name, err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	if tree != "" {
		for _, v := range []string{"LAUNCH_ROOTFS", "APPTAINER_ROOTFS", "SINGULARITY_ROOTFS"} {
			cmd.Env = append(cmd.Env, v+"="+tree)
		}
	}
	return b.runScript(cmd, name, step.Line)
}

// runScript runs a section's command, its output going to the user's, and
// makes its failure one line: the section, its line, the exit status and
// the last command sh -x traced.
func (b *builder) runScript(cmd *exec.Cmd, name string, line int) error {
	tr := &lastTrace{w: b.o.Stderr}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = b.o.Stdout, tr
	cmd.SysProcAttr = sysProcAttr()
	err := cmd.Run()
	if err == nil {
		return nil
	}
	at := ""
	if t := tr.last(); t != "" {
		at = "; last command: " + t
	}
	return b.errorf(line, "%%%s failed (%s)%s", name, exitStatus(err), at)
}

// launchExec is `launch exec` of argv in tree.
func (b *builder) launchExec(ctx context.Context, tree string, writable bool, env []string, argv ...string) *exec.Cmd {
	args := []string{"exec", "--pwd", "/"}
	if writable {
		args = append(args, "--writable")
		// Root's builds too: its --fakeroot maps ids 0…65535 to
		// themselves, so %post may switch users (apt-get's _apt), which
		// a namespace of root alone refuses.
		if b.o.Fakeroot || os.Geteuid() == 0 {
			args = append(args, "--fakeroot")
		}
	}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	for _, bind := range b.o.Binds {
		args = append(args, "--bind", bind)
	}
	args = append(append(args, tree), argv...)
	return exec.CommandContext(ctx, b.o.Launch, args...)
}

// post runs %post inside the stage's tree as the user (as root with
// --fakeroot).
func (b *builder) post(ctx context.Context, s Step) error {
	st := &b.o.Def.Stages[s.Stage]
	tree := b.trees[s.Stage]
	const script = "/.post.script"
	if err := build.WriteInRoot(tree, script, []byte(postScript(st)), 0o755); err != nil {
		return err
	}
	defer unix.Unlinkat(unix.AT_FDCWD, filepath.Join(tree, script[1:]), 0)
	argv, err := st.Post.Command(script)
	if err != nil {
		return b.errorf(s.Line, "%%post: %v", err)
	}
	var env []string
	for _, p := range []string{"LAUNCH", "APPTAINER", "SINGULARITY"} {
		env = append(env, p+"_ENVIRONMENT="+PostEnv, p+"_LABELS="+BuildLabels)
	}
	name := "post"
	if st.Post.Line == 0 {
		name = "appinstall"
	}
	return b.runScript(b.launchExec(ctx, tree, true, env, argv...), name, s.Line)
}

// test runs %test in the finished tree.
func (b *builder) test(ctx context.Context, s Step) error {
	return b.runScript(b.launchExec(ctx, b.trees[s.Stage], false, nil, layout.Test), "test", s.Line)
}

// copyFiles copies one %files set; from is the tree of the stage it comes
// from ("" for the host).
func (b *builder) copyFiles(s Step, from string) error {
	tree := b.trees[s.Stage]
	for _, e := range s.Files.Entries {
		src := e.Src
		if from != "" {
			p, err := securejoin.SecureJoin(from, src)
			if err != nil {
				return b.errorf(e.Line, "%%files: %s: %v", e.Src, err)
			}
			src = p
		}
		matches := []string{src}
		if hasMeta(src) {
			m, err := filepath.Glob(src)
			if err != nil {
				return b.errorf(e.Line, "%%files: bad pattern %s: %v", e.Src, err)
			}
			matches = m
		}
		if len(matches) == 0 {
			return b.errorf(e.Line, "%%files: nothing matches %s", e.Src)
		}
		dst := e.Dst
		if dst == "" {
			dst = e.Src
		}
		if len(matches) > 1 || strings.HasSuffix(dst, "/") { // cp needs a directory here; make it
			if err := mkdirIn(tree, dst); err != nil {
				return b.errorf(e.Line, "%%files: %s: %v", dst, err)
			}
		}
		for _, m := range matches {
			if from != "" { // a match through a link of that tree could be anywhere
				rel, _ := filepath.Rel(from, m)
				if again, err := securejoin.SecureJoin(from, rel); err != nil || again != m {
					return b.errorf(e.Line, "%%files from %s: %s goes through a symbolic link", s.Files.From, e.Src)
				}
			} else if _, err := os.Stat(m); err != nil {
				return b.errorf(e.Line, "%%files: cannot read %s: %v", m, bareErr(err))
			}
			if err := copyInto(tree, m, dst, from == ""); err != nil {
				return b.errorf(e.Line, "%%files: copying %s to %s: %v", m, dst, err)
			}
		}
	}
	return nil
}

// mkdirIn makes the directory dir (a path in the image) inside tree.
func mkdirIn(tree, dir string) error {
	rf, err := os.OpenFile(tree, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer rf.Close()
	h, err := securejoin.MkdirAllHandle(rf, dir, 0o755)
	if err != nil {
		return err
	}
	return h.Close()
}

// metadata writes the stage's /.singularity.d files.
func (b *builder) metadata(s Step) error {
	st := &b.o.Def.Stages[s.Stage]
	tree := b.trees[s.Stage]
	for _, f := range metadataFiles(st, b.o.Def.Text()) {
		if err := build.WriteInRoot(tree, f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("writing %s into the image: %w", f.path, err)
		}
	}
	base, err := build.ReadInRoot(tree, layout.Labels)
	if err != nil {
		return err
	}
	post, err := build.ReadInRoot(tree, BuildLabels)
	if err != nil {
		return err
	}
	lj, err := labels(st, base, post, b.o.Now)
	if err != nil {
		return err
	}
	if err := build.WriteInRoot(tree, layout.Labels, lj, 0o644); err != nil {
		return fmt.Errorf("writing %s into the image: %w", layout.Labels, err)
	}
	if err := unix.Unlinkat(unix.AT_FDCWD, filepath.Join(tree, BuildLabels[1:]), 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("removing %s: %w", BuildLabels, err)
	}
	return nil
}

// bareErr drops the path an *os.PathError repeats.
func bareErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// lastTrace passes output through and remembers the last line sh -x traced
// ("+ command").
type lastTrace struct {
	w        io.Writer
	partial  []byte
	lastLine string
}

func (t *lastTrace) Write(p []byte) (int, error) {
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		if ln := string(t.partial[:i]); strings.HasPrefix(ln, "+ ") {
			t.lastLine = ln
		}
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 4096 {
		t.partial = t.partial[:0]
	}
	return t.w.Write(p)
}

func (t *lastTrace) last() string {
	if len(t.lastLine) > 200 {
		return t.lastLine[:200] + "..."
	}
	return t.lastLine
}
