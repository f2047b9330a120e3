package e2e

import (
	"os"
	"testing"
)

// TestMain runs the suite, then stops what the harness started for it (the
// Slurm test cluster), whether the tests passed or failed.
func TestMain(m *testing.M) {
	code := m.Run()
	stopSlurm()
	os.Exit(code)
}
