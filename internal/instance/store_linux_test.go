package instance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"db", true}, {"a.b_c-9", true}, {strings.Repeat("x", 64), true},
		{"", false}, {".hidden", false}, {"-flag", false}, {"a/b", false}, {"a b", false},
		{"..", false}, {strings.Repeat("x", 65), false}, {"é", false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestStoreRecords(t *testing.T) {
	home, xdg := t.TempDir(), t.TempDir()
	if err := os.Chmod(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_RUNTIME_DIR": xdg}
	s, err := Open(os.Getuid(), home, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Path(), filepath.Join(xdg, "launch", "instances")) {
		t.Errorf("records in %s, want under $XDG_RUNTIME_DIR", s.Path())
	}
	pid, st, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{Name: "a", Pid: pid, StartTime: st}
	if err := s.Write(r, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(r, true); err != ErrInUse {
		t.Errorf("exclusive write over a record: %v, want ErrInUse", err)
	}
	got, p, err := s.Lookup("a")
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if got.Pid != pid || got.UID != os.Getuid() {
		t.Errorf("read back %+v", got)
	}
	// A recycled pid: the start time differs.
	r.StartTime++
	if err := s.Write(r, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Lookup("a"); err != ErrGone {
		t.Errorf("a record with another start time: %v, want ErrGone", err)
	}
	if _, err := s.Read("a"); err != ErrNotFound {
		t.Errorf("the stale record was not removed: %v", err)
	}
	// Hostile files: a link, a file others can write.
	if err := os.Symlink("/etc/passwd", filepath.Join(s.Path(), "l.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("l"); err == nil {
		t.Errorf("a record that is a link was read")
	}
	w := filepath.Join(s.Path(), "w.json")
	if err := os.WriteFile(w, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(w, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read("w"); err == nil || !strings.Contains(err.Error(), "written by others") {
		t.Errorf("a record others can write: %v", err)
	}
}

func TestOpenRefusesOthersRuntimeDir(t *testing.T) {
	home, xdg := t.TempDir(), t.TempDir()
	if err := os.Chmod(xdg, 0o777); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_RUNTIME_DIR": xdg}
	s, err := Open(os.Getuid(), home, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Path(), filepath.Join(home, ".launch", "instances", "state")) {
		t.Errorf("records in %s: a runtime directory others can write must be passed over for ~/.launch", s.Path())
	}
}

// TestStoreSweepsTemps: the temporary file of a Write whose process was
// killed before its rename is removed under the lock; a live writer's,
// and files that are no such temporary, stay.
func TestStoreSweepsTemps(t *testing.T) {
	xdg := t.TempDir()
	if err := os.Chmod(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(os.Getuid(), t.TempDir(), func(k string) string { return map[string]string{"XDG_RUNTIME_DIR": xdg}[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{ // name: kept
		".db.tmp." + strconv.Itoa(dead.Process.Pid): false,
		".db.tmp." + strconv.Itoa(os.Getpid()):      true,
		".db.tmp.x":                                 true,
		"db.tmp.1":                                  true,
	}
	for n := range files {
		if err := os.WriteFile(filepath.Join(s.Path(), n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := s.Lock()
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	for n, kept := range files {
		if _, err := os.Lstat(filepath.Join(s.Path(), n)); (err == nil) != kept {
			t.Errorf("%s: present %v after the lock, want %v", n, err == nil, kept)
		}
	}
}
