package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// TestTimeline: LAUNCH_TIMELINE=1 makes the launcher and the stage print
// their start-up milestones on stderr, in order, on one clock, without
// touching the payload's output or status; unset or empty, nothing.
func TestTimeline(t *testing.T) {
	img := busyboxImage(t, nil)
	want := []string{
		"launcher main", "launcher clone", "launcher stage-cloned",
		"stage main", "stage config-read", "stage image-mounted", "stage image-readable",
		"stage root-assembled", "stage pivoted", "stage payload-started", "stage payload-reaped",
		"stage payload-tree-killed", "stage fuse-server-reaped", "stage exit",
		"launcher stage-reaped",
	}

	r := launchWith(t, runOpts{Env: []string{"LAUNCH_TIMELINE=1"}}, "exec", img, "sh", "-c", "echo out; exit 7")
	if r.Code != 7 || r.Stdout != "out\n" {
		t.Fatalf("with the timeline: exit %d, stdout %q; want 7, %q (stderr: %s)", r.Code, r.Stdout, "out\n", r.Stderr)
	}
	var got []string
	var last int64
	pids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "launch-timeline:" {
			t.Fatalf("stderr line %q is not a timeline line", line)
		}
		us, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || us < last {
			t.Errorf("line %q: time not a number or earlier than the line before (%d)", line, last)
		}
		last = us
		if p, ok := pids[f[3]]; ok && p != f[2] {
			t.Errorf("role %s printed by pids %s and %s", f[3], p, f[2])
		}
		pids[f[3]] = f[2]
		got = append(got, f[3]+" "+f[4])
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("milestones:\n got %q\nwant %q", got, want)
	}
	if pids["launcher"] == pids["stage"] {
		t.Errorf("launcher and stage have the same pid %s", pids["launcher"])
	}

	r = launchWith(t, runOpts{Env: []string{"LAUNCH_TIMELINE="}}, "exec", img, "true")
	wantOK(t, r)
	if r.Stderr != "" {
		t.Errorf("LAUNCH_TIMELINE empty: stderr %q, want nothing", r.Stderr)
	}
}
