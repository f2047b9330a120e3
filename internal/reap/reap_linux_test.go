package reap

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		ws   syscall.WaitStatus
		want int
	}{
		{0, 0},              // exit 0
		{3 << 8, 3},         // exit 3
		{255 << 8, 255},     // exit 255
		{9, 137},            // SIGKILL
		{15, 143},           // SIGTERM
		{0x7f | 19<<8, 255}, // stopped: not finished
	} {
		if got := Status(tc.ws); got != tc.want {
			t.Errorf("Status(%#x) = %d, want %d", uint32(tc.ws), got, tc.want)
		}
	}
	if got := Describe(9); got != "killed by signal 9" {
		t.Errorf("Describe(SIGKILL) = %q", got)
	}
	if got := Describe(2 << 8); got != "exit status 2" {
		t.Errorf("Describe(exit 2) = %q", got)
	}
}

// TestReaper starts a child through the reaper and sees its exit reported,
// and its grandchild listed among the descendants while it runs.
func TestReaper(t *testing.T) {
	r := New()
	proc, err := os.Open("/proc")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	pid, err := r.ForkExec("/bin/sh", []string{"sh", "-c", "sleep 0.3 & wait; exit 7"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := 0; i < 100 && !found; i++ {
		for _, d := range Descendants(proc, os.Getpid()) {
			if d != pid {
				found = true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !found {
		t.Errorf("the child's own child never listed among the descendants")
	}
	select {
	case ev := <-r.Exits():
		if ev.Pid != pid || Status(ev.Status) != 7 {
			t.Errorf("exit %+v, want pid %d status 7", ev, pid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit reported")
	}
}

func TestHasChildren(t *testing.T) {
	if HasChildren() {
		t.Skip("the test process already has a child")
	}
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !HasChildren() {
		t.Error("HasChildren false with a running child")
	}
	// (Not checked with the child exited and unreaped: TestReaper's
	// Reaper, still running, reaps every child of the test process.)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if HasChildren() {
		t.Error("HasChildren true once the only child is reaped")
	}
}
