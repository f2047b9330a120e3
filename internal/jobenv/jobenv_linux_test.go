package jobenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseStat(t *testing.T) {
	rest := " S 7 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 2 3"
	for _, tc := range []struct {
		line string
		want Stat
		ok   bool
	}{
		{"42 (slurmstepd)" + rest, Stat{"slurmstepd", 7, 12345}, true},
		{"42 (a) (b) c)" + rest, Stat{"a) (b) c", 7, 12345}, true},
		{"42 (x y)" + rest, Stat{"x y", 7, 12345}, true},
		{"42 slurmstepd" + rest, Stat{}, false},
		{"42 (x) S 7", Stat{}, false},
		{"42 (x) S z 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345", Stat{}, false},
	} {
		got, err := ParseStat([]byte(tc.line))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseStat(%q) = %+v, %v; want %+v (ok %v)", tc.line, got, err, tc.want, tc.ok)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	proc, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(proc)
	st, err := ReadStat(proc, os.Getpid())
	if err != nil || st.PPid != os.Getppid() || st.Start == 0 || st.Comm == "" {
		t.Fatalf("ReadStat(self) = %+v, %v; want ppid %d", st, err, os.Getppid())
	}
	if _, _, ok := StepAncestor(proc, os.Getpid()); ok && os.Getenv(SlurmJob) == "" {
		t.Errorf("a slurmstepd among the ancestors of a test outside Slurm")
	}
	if got, start, ok := AncestorNamed(proc, os.Getpid(), st.Comm); !ok || got != os.Getpid() || start != st.Start {
		t.Errorf("AncestorNamed(self, %q) = %d, %d, %v; want this process %d", st.Comm, got, start, ok, os.Getpid())
	}
	if parent, err := ReadStat(proc, os.Getppid()); err == nil && parent.Comm != st.Comm {
		if got, _, ok := AncestorNamed(proc, os.Getpid(), parent.Comm); !ok || got != os.Getppid() {
			t.Errorf("AncestorNamed(self, %q) = %d, %v; want the parent %d", parent.Comm, got, ok, os.Getppid())
		}
	}
	if got, _, ok := AncestorNamed(proc, os.Getpid(), "no such comm!"); ok {
		t.Errorf("AncestorNamed(self, a name nobody has) = %d, want none", got)
	}
}

func TestUnwatched(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"PBS_JOBID": "1"}, "PBS_JOBID"},
		{map[string]string{"FLUX_JOB_ID": "f1"}, "FLUX_JOB_ID"},
		{map[string]string{"SLURM_JOB_ID": "3", "JOB_ID": "1"}, ""},
	} {
		if got := Unwatched(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("Unwatched(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
