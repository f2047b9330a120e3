package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// maxMeta bounds what is read of a metadata file in an image tree.
const maxMeta = 1 << 20

// ReadInRoot reads the regular file rel in tree (nil when absent or not a
// regular file), resolving it inside tree, at most 1 MiB.
func ReadInRoot(tree, rel string) ([]byte, error) {
	h, err := securejoin.OpenInRoot(tree, rel)
	if err != nil {
		return nil, nil
	}
	defer h.Close()
	f, err := securejoin.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxMeta+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s in the image: %w", rel, err)
	}
	if len(data) > maxMeta {
		return nil, fmt.Errorf("%s in the image is larger than %d bytes", rel, maxMeta)
	}
	return data, nil
}

// lstatIn reports whether rel (a path in the image) exists in root, without
// following any link: a parent that is not a real directory is an error
// naming it, since nothing can be added below it.
func lstatIn(root, rel string) (bool, error) {
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	p := root
	for i, c := range parts {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("checking %s: %w", p, bare(err))
		}
		if i < len(parts)-1 && !fi.IsDir() {
			return false, fmt.Errorf("%s is not a directory (%s), so the image metadata cannot be added below it", p, fi.Mode().Type())
		}
	}
	return true, nil
}

// WriteBase adds to the tree root (a tree launch made and owns) every entry
// of BaseLayout it does not have, leaving what is there as it is; paths are
// resolved inside root and no link of the tree is followed.
func WriteBase(root string) error {
	rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer rf.Close()
	for _, e := range BaseLayout() {
		if _, err := securejoin.OpenatInRoot(rf, e.Path); err == nil {
			continue // there, as whatever it is (a link that resolves inside the root too)
		}
		if ok, err := lstatIn(root, e.Path); err != nil || ok {
			continue // a dangling link, or below a non-directory: left as it is
		}
		switch e.Kind {
		case KindDir:
			h, err := securejoin.MkdirAllHandle(rf, e.Path, os.FileMode(e.Mode))
			if err != nil {
				return fmt.Errorf("making %s: %w", e.Path, err)
			}
			h.Close()
		case KindFile:
			if err := WriteInRoot(root, e.Path, []byte(e.Data), e.Mode); err != nil {
				return fmt.Errorf("writing %s: %w", e.Path, err)
			}
		case KindLink:
			d, err := securejoin.MkdirAllHandle(rf, filepath.Dir(e.Path), 0o755)
			if err != nil {
				return fmt.Errorf("making %s: %w", filepath.Dir(e.Path), err)
			}
			err = unix.Symlinkat(e.Target, int(d.Fd()), filepath.Base(e.Path))
			d.Close()
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("linking %s: %w", e.Path, err)
			}
		}
	}
	return nil
}

// metaPlan is what Build adds to the packed tree without touching it: the
// mksquashfs pseudo-file definitions and exclusions, and the SIF objects.
type metaPlan struct {
	pseudo   string   // mksquashfs -pf file ("" when nothing is added)
	exclude  []string // source paths replaced by a pseudo file (-e)
	entries  []Entry  // what the pseudo definitions add, in order
	deffile  []byte
	metadata []byte
	staging  *tmptree.Dir
}

// remove removes the staging directory.
func (p *metaPlan) remove() {
	if p.staging != nil {
		p.staging.Remove()
	}
}

// planMeta works out the metadata of the image o.Source packs into: the base
// layout entries the tree lacks, labels.json with the build labels, a
// definition file when it has none, and the inspect metadata object. The
// contents go to files in a private staging directory beside the output
// that mksquashfs pseudo-file definitions copy into the image.
func planMeta(o Options) (*metaPlan, error) {
	return planMetaOf(o, dirView(o.Source), true)
}

// planMetaOf is planMeta for the tree view reads (a directory, or a tree
// streamed to the SquashFS writer).
// Without stage it lists the entries only (metaPlan.entries): no staging
// directory, no pseudo-file definitions.
func planMetaOf(o Options, view TreeView, stage bool) (*metaPlan, error) {
	p := &metaPlan{}
	var st *tmptree.Dir
	var err error
	if stage {
		// Beside the output, as the output's own temporary file is: that
		// directory is writable (TMPDIR need not be), and a killed build's
		// staging directory is swept there (SweepHidden) by the next build.
		if st, err = tmptree.MkdirTemp(filepath.Dir(o.Out), tmptree.Hidden(filepath.Base(o.Out))); err != nil {
			return nil, err
		}
		p.staging = st
	}
	var defs strings.Builder
	n := 0
	add := func(path string, data []byte, mode uint32, replace bool) error {
		p.entries = append(p.entries, Entry{Path: path, Kind: KindFile, Mode: mode, Data: string(data)})
		if st == nil {
			return nil
		}
		n++
		f := filepath.Join(st.Path, fmt.Sprintf("%d", n))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			return fmt.Errorf("staging %s: %w", path, err)
		}
		if replace {
			p.exclude = append(p.exclude, path[1:])
		}
		fmt.Fprintf(&defs, "%s f %o 0 0 cat %s\n", path, mode, shellQuote(f))
		return nil
	}
	added := map[string]string{} // files the tree lacks, by path in the image
	for _, e := range BaseLayout() {
		ok, err := view.Exists(e.Path)
		if err != nil {
			p.remove()
			return nil, err
		}
		if ok {
			continue
		}
		if e.Kind != KindFile {
			p.entries = append(p.entries, e)
		}
		switch e.Kind {
		case KindDir:
			fmt.Fprintf(&defs, "%s d %o 0 0\n", e.Path, e.Mode)
		case KindLink:
			fmt.Fprintf(&defs, "%s s %o 0 0 %s\n", e.Path, e.Mode, e.Target)
		case KindFile:
			added[e.Path] = e.Data
			if err := add(e.Path, []byte(e.Data), e.Mode, false); err != nil {
				p.remove()
				return nil, err
			}
		}
	}
	read := func(path string) (string, error) {
		if d, ok := added[path]; ok {
			return d, nil
		}
		b, err := view.ReadFile(path)
		return string(b), err
	}
	files := ImageFiles{Environment: map[string]string{}}
	for _, f := range []struct {
		path string
		dst  *string
	}{{layout.Runscript, &files.Runscript}, {layout.Startscript, &files.Startscript},
		{layout.Test, &files.Test}, {layout.RunscriptHelp, &files.Help}, {layout.Deffile, &files.Deffile}} {
		if *f.dst, err = read(f.path); err != nil {
			p.remove()
			return nil, err
		}
	}
	for path, data := range added {
		if filepath.Dir(path) == layout.EnvDir && InspectEnv(filepath.Base(path)) {
			files.Environment[path] = data
		}
	}
	if err := view.EnvFiles(files.Environment); err != nil {
		p.remove()
		return nil, err
	}
	if files.Apps, err = view.Apps(); err != nil {
		p.remove()
		return nil, err
	}
	header := o.Header
	if header == nil {
		header = SourceHeader(o.Origin)
	}
	if files.Deffile == "" {
		def := HeaderDeffile(header)
		files.Deffile = string(def)
		hadDef, _ := view.Exists(layout.Deffile)
		if err := add(layout.Deffile, def, 0o644, hadDef); err != nil {
			p.remove()
			return nil, err
		}
	}
	p.deffile = []byte(files.Deffile)
	old, err := view.ReadFile(layout.Labels)
	if err != nil {
		p.remove()
		return nil, err
	}
	files.Labels = ParseLabels(old)
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	arch := o.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	AddBuildLabels(files.Labels, BuildInfo{Now: now, Arch: arch, Header: header, Help: files.Help != ""})
	lj, err := LabelsJSON(files.Labels)
	if err != nil {
		p.remove()
		return nil, err
	}
	hadLabels, _ := view.Exists(layout.Labels)
	if err := add(layout.Labels, lj, 0o644, hadLabels); err != nil {
		p.remove()
		return nil, err
	}
	if p.metadata, err = InspectMetadata(files); err != nil {
		p.remove()
		return nil, err
	}
	if st == nil {
		return p, nil
	}
	pf := filepath.Join(st.Path, "pseudo")
	if err := os.WriteFile(pf, []byte(defs.String()), 0o600); err != nil {
		p.remove()
		return nil, fmt.Errorf("staging the image metadata: %w", err)
	}
	p.pseudo = pf
	return p, nil
}

// TreeView is what the metadata plan reads of the tree it packs.
type TreeView interface {
	// Exists reports whether rel (a path in the image) exists, not
	// following any link; a parent that is not a directory is an error.
	Exists(rel string) (bool, error)
	// ReadFile reads the regular file rel (nil when absent or not a
	// regular file), resolved inside the tree, at most 1 MiB.
	ReadFile(rel string) ([]byte, error)
	// EnvFiles adds to env the environment scripts of the tree that
	// inspect shows (InspectEnv), by path in the image.
	EnvFiles(env map[string]string) error
	// Apps reads the metadata of the SCIF apps (readApps).
	Apps() (map[string]AppFiles, error)
}

// dirView is the TreeView of a directory tree.
type dirView string

func (d dirView) Exists(rel string) (bool, error)      { return lstatIn(string(d), rel) }
func (d dirView) ReadFile(rel string) ([]byte, error)  { return ReadInRoot(string(d), rel) }
func (d dirView) EnvFiles(env map[string]string) error { return envFiles(string(d), env) }
func (d dirView) Apps() (map[string]AppFiles, error)   { return readApps(string(d)) }

// envFiles adds to env the environment scripts of root that inspect shows.
func envFiles(root string, env map[string]string) error {
	if ok, err := lstatIn(root, layout.EnvDir); err != nil || !ok {
		return err
	}
	fi, err := os.Lstat(filepath.Join(root, layout.EnvDir))
	if err != nil || !fi.IsDir() {
		return nil
	}
	des, err := os.ReadDir(filepath.Join(root, layout.EnvDir))
	if err != nil {
		return fmt.Errorf("reading %s in the image: %w", layout.EnvDir, bare(err))
	}
	for _, de := range des {
		if !de.Type().IsRegular() || !InspectEnv(de.Name()) {
			continue
		}
		b, err := ReadInRoot(root, layout.EnvDir+"/"+de.Name())
		if err != nil {
			return err
		}
		env[layout.EnvDir+"/"+de.Name()] = string(b)
	}
	return nil
}

// shellQuote quotes s for the shell that runs a pseudo file's command.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
