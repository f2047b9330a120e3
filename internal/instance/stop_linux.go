package instance

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// killWait is how long a SIGKILLed init may take to go.
const killWait = 5 * time.Second

// Stop ends the instance whose init is p: sig, then, if it has not ended
// within timeout, SIGKILL (forced is then true). The init is PID 1 of the
// instance's PID namespace, so the kernel ends every process in it when it
// goes, and its mounts go with its mount namespace. The record of name is
// removed once the init is gone.
func (s *Store) Stop(name string, p *Proc, sig unix.Signal, timeout time.Duration) (forced bool, err error) {
	if err := p.Signal(sig); err != nil && p.Alive() {
		return false, fmt.Errorf("stopping instance %s: %w", name, err)
	}
	if !p.Wait(timeout) {
		forced = true
		if err := p.Signal(unix.SIGKILL); err != nil && p.Alive() {
			return true, fmt.Errorf("stopping instance %s: %w", name, err)
		}
		if !p.Wait(killWait) {
			return true, fmt.Errorf("instance %s (pid %d) did not end within %v of SIGKILL", name, p.Pid, killWait)
		}
	}
	unlock, err := s.Lock()
	if err != nil {
		return forced, err
	}
	defer unlock()
	if r, err := s.Read(name); err == nil && r.Pid == p.Pid {
		return forced, s.Remove(name)
	}
	return forced, nil
}
