package share

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestStepOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/slurm/uid_1001/job_5/step_0/task_3", "/slurm/uid_1001/job_5/step_0"},
		{"/system.slice/slurmstepd.scope/job_5/step_0/user/task_12", "/system.slice/slurmstepd.scope/job_5/step_0"},
		{"/system.slice/slurmstepd.scope/job_5/step_batch/user/task_0", "/system.slice/slurmstepd.scope/job_5/step_batch"},
		{"/user.slice/user-1001.slice/session-3.scope", "/user.slice/user-1001.slice/session-3.scope"},
		{"/job_5/task_3", "/job_5/task_3"},               // not below a step: kept
		{"/step_0/task_x", "/step_0/task_x"},             // not a task number
		{"/step_0/task_", "/step_0/task_"},               // no number
		{"/step_0/other/task_1", "/step_0/other/task_1"}, // only "user" may sit between
		{"/", "/"},
		{"", ""},
	} {
		if got := stepOf(tc.in); got != tc.want {
			t.Errorf("stepOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScope(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	task0 := "12:pids:/slurm/uid_1/job_7/step_0/task_0\n0::/system.slice/slurmstepd.scope/job_7/step_0/user/task_0\n"
	task1 := "12:pids:/slurm/uid_1/job_7/step_0/task_1\n0::/system.slice/slurmstepd.scope/job_7/step_0/user/task_1\n"
	step1 := "12:pids:/slurm/uid_1/job_7/step_1/task_0\n0::/system.slice/slurmstepd.scope/job_7/step_1/user/task_0\n"
	slurm := env(map[string]string{"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0"})
	for _, tc := range []struct {
		name   string
		a, b   string
		ea, eb func(string) string
		same   bool
	}{
		{"tasks of one step", task0, task1, slurm, slurm, true},
		{"two steps", task0, step1, slurm, env(map[string]string{"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "1"}), false},
		{"two jobs, one cgroup", "0::/\n", "0::/\n", slurm, env(map[string]string{"SLURM_JOB_ID": "8", "SLURM_STEP_ID": "0"}), false},
		{"one login session", "0::/user.slice/s-1.scope\n", "0::/user.slice/s-1.scope", env(nil), env(nil), true},
		{"two sessions", "0::/user.slice/s-1.scope\n", "0::/user.slice/s-2.scope\n", env(nil), env(nil), false},
	} {
		got := Scope(tc.a, tc.ea) == Scope(tc.b, tc.eb)
		if got != tc.same {
			t.Errorf("%s: same scope = %v, want %v (%q vs %q)", tc.name, got, tc.same, Scope(tc.a, tc.ea), Scope(tc.b, tc.eb))
		}
	}
}

func TestIdentityName(t *testing.T) {
	a := Identity{UID: 1001, GID: 1001, Dev: 1, Ino: 2, Size: 3, Offset: 4096, Server: "/usr/bin/squashfuse_ll", Scope: "0::/;"}
	for _, tc := range []struct {
		name   string
		change func(*Identity)
		same   bool
	}{
		{"identical", func(*Identity) {}, true},
		{"other inode", func(i *Identity) { i.Ino++ }, false},
		{"rewritten in place", func(i *Identity) { i.MtimeNs++ }, false},
		{"other gid", func(i *Identity) { i.GID++ }, false},
		{"other partition", func(i *Identity) { i.Offset = 0 }, false},
		{"other server", func(i *Identity) { i.Server = "/usr/bin/squashfuse" }, false},
		{"other scope", func(i *Identity) { i.Scope = "0::/x;" }, false},
	} {
		b := a
		tc.change(&b)
		if got := a.Name(0) == b.Name(0); got != tc.same {
			t.Errorf("%s: same name = %v, want %v", tc.name, got, tc.same)
		}
		if got := a.Key() == b.Key(); got != tc.same {
			t.Errorf("%s: same key = %v, want %v", tc.name, got, tc.same)
		}
	}
	if n := a.Name(0); !strings.HasPrefix(n, "@launch/share/1001/") || len(n) > 107 {
		t.Errorf("Name(0) = %q: want an abstract name for uid 1001 that fits sun_path", n)
	}
}

// TestNameNeedsTheSecret: the rendezvous names depend on the user's secret
// (another user, who can compute the key from the image file and the
// cgroup, cannot compute them), not on the secret alone, and differ from
// one generation to the next; none is the unkeyed hash that 5195d4f used.
func TestNameNeedsTheSecret(t *testing.T) {
	a := Identity{UID: 1001, GID: 1001, Dev: 1, Ino: 2, Size: 3, Offset: 4096, Server: "/usr/bin/squashfuse_ll", Scope: "0::/;",
		Secret: []byte("0123456789abcdef")}
	sum := sha256.Sum256([]byte(a.Key()))
	old := fmt.Sprintf("@launch/share/%d/%s", a.UID, hex.EncodeToString(sum[:16]))
	b := a
	b.Secret = []byte("0123456789abcdeF")
	noSecret := a
	noSecret.Secret = nil
	seen := map[string]string{old: "the unkeyed name"}
	for gen := 0; gen < Generations; gen++ {
		for who, id := range map[string]Identity{"secret a": a, "secret b": b, "no secret": noSecret} {
			n := id.Name(gen)
			what := fmt.Sprintf("%s, generation %d", who, gen)
			if prev, dup := seen[n]; dup {
				t.Errorf("%s has the name of %s: %s", what, prev, n)
			}
			seen[n] = what
			if n != id.Name(gen) {
				t.Errorf("%s: Name is not stable", what)
			}
		}
	}
	if a.Key() != b.Key() {
		t.Errorf("the secret changed the key sent to holders")
	}
}

func TestKernelSupports(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"6.18.44-fc-v769", true},
		{"6.15.0", true},
		{"7.0.1-arch1", true},
		{"6.14.11-300.fc42.x86_64", false},
		{"5.14.0-570.el9.x86_64", false},
		{"4.18.0-553.el8_10.x86_64", false},
		{"", false},
		{"garbage", false},
		{"6", false},
		{"6.x", false},
		{"6.16", true},
	} {
		if got := KernelSupports(tc.release); got != tc.want {
			t.Errorf("KernelSupports(%q) = %v, want %v", tc.release, got, tc.want)
		}
	}
}
