package defbuild

import (
	"os"
	"path"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/deffile"
	"github.com/launch-hpc/launch/internal/layout"
)

// apps lays out the stage's SCIF apps in its tree (apps.go) and copies
// their %appfiles from the host.
func (b *builder) apps(s Step) error {
	st := &b.o.Def.Stages[s.Stage]
	tree := b.trees[s.Stage]
	for i := range st.Apps {
		a := &st.Apps[i]
		for _, d := range appDirs(a) {
			if err := mkdirIn(tree, d); err != nil {
				return b.errorf(a.Line, "app %s: making %s in the image: %v", a.Name, d, err)
			}
		}
		fs, err := appFiles(a)
		if err != nil {
			return b.errorf(a.Line, "%v", err)
		}
		for _, f := range fs {
			if err := build.WriteInRoot(tree, f.path, f.data, f.mode); err != nil {
				return b.errorf(a.Line, "app %s: writing %s into the image: %v", a.Name, f.path, err)
			}
		}
		if err := b.appFilesCopy(tree, a); err != nil {
			return err
		}
	}
	for _, f := range appsEnvFiles(st.Apps) {
		if f.path == layout.AppsEnv {
			// One the base image has (Apptainer's, or launch's) is kept.
			if old, err := build.ReadInRoot(tree, f.path); err != nil || old != nil {
				continue
			}
		}
		if err := build.WriteInRoot(tree, f.path, f.data, f.mode); err != nil {
			return b.errorf(s.Line, "writing %s into the image: %v", f.path, err)
		}
	}
	return nil
}

// appFilesCopy copies the app's %appfiles from the host: "SRC [DST]", DST
// (SRC when not given) taken inside the app's root, as `cp -fLr` does.
func (b *builder) appFilesCopy(tree string, a *deffile.App) error {
	for _, e := range a.Files {
		dst := e.Dst
		if dst == "" {
			dst = e.Src
		}
		dst = path.Join(appRoot(a), dst)
		if _, err := os.Stat(e.Src); err != nil {
			return b.errorf(e.Line, "%%appfiles %s: cannot read %s: %v", a.Name, e.Src, bareErr(err))
		}
		if err := copyInto(tree, e.Src, dst, true); err != nil {
			return b.errorf(e.Line, "%%appfiles %s: copying %s to %s: %v", a.Name, e.Src, dst, err)
		}
	}
	return nil
}
