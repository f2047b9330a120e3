package subproc

import (
	"bytes"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestRunGivesUpOnHeldPipes: a child that ends while a grandchild keeps
// its stdout open does not keep Run waiting past WaitDelay, and Run asks
// the kernel to kill the child with launch (Pdeathsig).
func TestRunGivesUpOnHeldPipes(t *testing.T) {
	var out bytes.Buffer
	cmd := exec.Command("sh", "-c", "sleep 60 & echo started")
	cmd.Stdout = &out
	start := time.Now()
	err := Run(cmd)
	if took := time.Since(start); took > WaitDelay+10*time.Second {
		t.Fatalf("Run took %v with a grandchild holding its stdout", took)
	}
	if err != nil && err != exec.ErrWaitDelay {
		t.Fatalf("Run: %v", err)
	}
	if out.String() != "started\n" {
		t.Errorf("output %q", out.String())
	}
	if cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL {
		t.Errorf("Pdeathsig %v, want SIGKILL", cmd.SysProcAttr.Pdeathsig)
	}
}
