package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// TestTimeline: LAUNCH_TIMELINE=1 makes the launcher and the stage print
// their start-up milestones on stderr, each role's in order, on one clock,
// without touching the payload's output or status; unset or empty, nothing.
// Both ways of starting are checked: the default, where internal/preinit
// forks before the Go runtime starts (the launcher is the small waiting
// parent, the stage the Go process), and LAUNCH_PREINIT=0, where launch
// re-executes itself as the stage.
func TestTimeline(t *testing.T) {
	img := busyboxImage(t, nil)
	stageTail := []string{"share-claimed", "image-mounted", "sources-opened", "image-readable",
		"root-assembled", "pivoted", "command-resolved", "prefetched", "payload-started", "payload-reaped"}
	for _, tc := range []struct {
		name     string
		env      string
		launcher []string
		stage    []string
	}{
		{"preinit", "LAUNCH_PREINIT=1",
			[]string{"main", "forked", "status-received"},
			append(append([]string{"namespaces", "main", "resolved", "run-here"}, stageTail...),
				"payload-tree-killed", "status-sent", "fuse-server-reaped", "exit")},
		{"reexec", "LAUNCH_PREINIT=0",
			[]string{"main", "clone", "stage-cloned", "stage-reaped"},
			append(append([]string{"main", "config-read"}, stageTail...),
				"payload-tree-killed", "fuse-server-reaped", "exit")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launchWith(t, runOpts{Env: []string{"LAUNCH_TIMELINE=1", tc.env}}, "exec", img, "sh", "-c", "echo out; exit 7")
			if r.Code != 7 || r.Stdout != "out\n" {
				t.Fatalf("with the timeline: exit %d, stdout %q; want 7, %q (stderr: %s)", r.Code, r.Stdout, "out\n", r.Stderr)
			}
			got := map[string][]string{}
			last := map[string]int64{}
			pids := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
				f := strings.Fields(line)
				if len(f) != 5 || f[0] != "launch-timeline:" {
					t.Fatalf("stderr line %q is not a timeline line", line)
				}
				us, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil || us < last[f[3]] {
					t.Errorf("line %q: time not a number or earlier than the %s line before (%d)", line, f[3], last[f[3]])
				}
				last[f[3]] = us
				if p, ok := pids[f[3]]; ok && p != f[2] {
					t.Errorf("role %s printed by pids %s and %s", f[3], p, f[2])
				}
				pids[f[3]] = f[2]
				got[f[3]] = append(got[f[3]], f[4])
			}
			for role, want := range map[string][]string{"launcher": tc.launcher, "stage": tc.stage} {
				if strings.Join(got[role], ",") != strings.Join(want, ",") {
					t.Errorf("%s milestones:\n got %q\nwant %q", role, got[role], want)
				}
			}
			if len(got) != 2 {
				t.Errorf("roles %v, want launcher and stage", got)
			}
			if pids["launcher"] == pids["stage"] {
				t.Errorf("launcher and stage have the same pid %s", pids["launcher"])
			}
		})
	}

	r := launchWith(t, runOpts{Env: []string{"LAUNCH_TIMELINE="}}, "exec", img, "true")
	wantOK(t, r)
	if r.Stderr != "" {
		t.Errorf("LAUNCH_TIMELINE empty: stderr %q, want nothing", r.Stderr)
	}
}
