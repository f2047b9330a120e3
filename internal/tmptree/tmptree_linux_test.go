package tmptree

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func mkdirs(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// TestSweep: only unlocked entries of launch's names, of this host, that
// are directories or regular files, are removed; links are not followed.
func TestSweep(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("v"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, Name(KindBuild))
	staleArchive := filepath.Join(dir, Name(KindOCIArchive))
	mkdirs(t, filepath.Join(stale, "rootfs", "locked", "deep"), staleArchive)
	if err := os.Symlink(outside, filepath.Join(stale, "rootfs", "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(stale, "rootfs", "locked"), 0); err != nil {
		t.Fatal(err)
	}
	live, err := MkdirTemp(dir, KindBuild)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	other := filepath.Join(dir, KindBuild+"-otherhost-0123456789ab")
	mine := filepath.Join(dir, "my-launch-build")
	mkdirs(t, other, mine)
	link := filepath.Join(dir, Name(KindBuild))
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}

	removed := Sweep(dir)
	slices.Sort(removed)
	want := []string{filepath.Base(stale), filepath.Base(staleArchive)}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("Sweep removed %v, want %v", removed, want)
	}
	left := []string{filepath.Base(live.Path), filepath.Base(other), filepath.Base(mine), filepath.Base(link)}
	slices.Sort(left)
	if got := names(t, dir); !slices.Equal(got, left) {
		t.Errorf("left %v, want %v", got, left)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "v" {
		t.Errorf("a link was followed: %q %v", b, err)
	}

	// Once its process lets go (Remove, or death), it goes.
	if err := live.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.Path); !os.IsNotExist(err) {
		t.Errorf("Remove left %s: %v", live.Path, err)
	}
}

// TestSweepHidden: the hidden entries beside an output, files and
// directories, go unless locked.
func TestSweepHidden(t *testing.T) {
	dir := t.TempDir()
	staleDir := filepath.Join(dir, Name(Hidden("sb")))
	staleFile := filepath.Join(dir, Name(Hidden("out.sif")))
	mkdirs(t, filepath.Join(staleDir, "rootfs"))
	if err := os.WriteFile(staleFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy := filepath.Join(dir, Name(Hidden("busy.sif")))
	f, err := os.Create(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := LockFile(f); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "out.sif")
	if err := os.WriteFile(plain, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := len(SweepHidden(dir)); got != 2 {
		t.Errorf("SweepHidden removed %d entries, want 2", got)
	}
	if got, want := names(t, dir), []string{filepath.Base(busy), "out.sif"}; !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

// TestRemoveAll removes read-only trees without following links.
func TestRemoveAll(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	mkdirs(t, filepath.Join(tree, "a", "b"))
	if err := os.Symlink(outside, filepath.Join(tree, "a", "l")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(tree, "a", "b"), filepath.Join(tree, "a")} {
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveAll(tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Errorf("tree still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a link was followed: %v", err)
	}
	if err := RemoveAll(tree); err != nil {
		t.Errorf("removing a missing tree: %v", err)
	}
}
