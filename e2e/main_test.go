package e2e

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain runs the suite, then stops what the harness started for it (the
// Slurm test cluster, the multi-node one), whether the tests passed or failed.
//
// Tests send INT and HUP to launch and expect the payload to get them, but
// launch keeps the signals its caller ignores ignored (a script's
// background job ignores INT: `scripts/test &`). Started so, the suite
// catches and drops them instead: still ignored for itself, the default
// action for what it starts.
func TestMain(m *testing.M) {
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGHUP} {
		if signal.Ignored(s) {
			signal.Notify(make(chan os.Signal, 1), s)
		}
	}
	setSuiteLinger()
	code := m.Run()
	stopSlurm()
	stopCluster()
	os.Exit(code)
}
