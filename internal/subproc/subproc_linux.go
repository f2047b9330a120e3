// Package subproc runs the short-lived programs launch asks for an answer
// (ldconfig, nvidia-container-cli, launch-cdi, launch-sign) so that none
// outlives launch: the child is killed when the thread that started it
// ends (Pdeathsig, which follows the thread, not the process: the thread
// is locked while the child runs), and a child that leaves its output
// pipes open in a grandchild is given up on WaitDelay after it ends or
// its context is done.
package subproc

import (
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// WaitDelay is how long Run waits for the output pipes of a child that
// has ended or was killed (exec.Cmd.WaitDelay).
const WaitDelay = 5 * time.Second

// Run starts cmd with Pdeathsig SIGKILL and a WaitDelay (unless it has
// one), and waits for it, as cmd.Run.
func Run(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = WaitDelay
	}
	// Pdeathsig follows the thread that started the child (go.dev/issue/27505).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Wait()
}
