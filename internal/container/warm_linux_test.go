package container

import (
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		line string
		comm string
		ppid int
		ok   bool
	}{
		{"4242 (slurmstepd) S 1 4242 4242 0 -1", "slurmstepd", 1, true},
		{"77 (a (b) c) R 12 77 77", "a (b) c", 12, true},
		{"77 (sh) Z 0", "sh", 0, true},
		{"77 sh S 1", "", 0, false},
		{"77 (sh)", "", 0, false},
		{"", "", 0, false},
	} {
		comm, ppid, ok := parseStat([]byte(c.line))
		if comm != c.comm || ppid != c.ppid || ok != c.ok {
			t.Errorf("parseStat(%q) = %q, %d, %v; want %q, %d, %v", c.line, comm, ppid, ok, c.comm, c.ppid, c.ok)
		}
	}
}

// TestAncestorNamed: this process is found by its own name, its parent
// by its name, and a name none of them has is not found.
func TestAncestorNamed(t *testing.T) {
	proc, err := os.Open("/proc")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	self, _, ok := statOf(proc, os.Getpid())
	if !ok {
		t.Fatal("cannot read /proc/self/stat")
	}
	if got := ancestorNamed(proc, os.Getpid(), self); got != os.Getpid() {
		t.Errorf("ancestorNamed(self, %q) = %d, want %d", self, got, os.Getpid())
	}
	if parent, _, ok := statOf(proc, os.Getppid()); ok && parent != self {
		if got := ancestorNamed(proc, os.Getpid(), parent); got != os.Getppid() {
			t.Errorf("ancestorNamed(self, %q) = %d, want the parent %d", parent, got, os.Getppid())
		}
	}
	if got := ancestorNamed(proc, os.Getpid(), "no such comm!"); got != 0 {
		t.Errorf("ancestorNamed(self, a name nobody has) = %d, want 0", got)
	}
}
