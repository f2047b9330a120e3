package e2e

// Many containers of one image by one user, as an MPI job or a job array
// starts them on one node: all must start, none may disturb another, and
// nothing may be left afterwards. A correctness test; the wall time of 64
// simultaneous launches is measured by `make bench` (docs/performance.md).

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestManyAtOnce starts 64 `launch exec` of one SIF at once, then 200 one
// after the other; every one must print its own number and exit 0, and no
// process (launcher, stage, squashfuse, payload) or mount may remain.
func TestManyAtOnce(t *testing.T) {
	img := buildSIF(t, busyboxTree(t))
	one := func(t *testing.T, mark string, i int) error {
		r := launchWith(t, runOpts{Env: []string{mark}, Timeout: 5 * time.Minute},
			"exec", img, "sh", "-c", `echo "$1 $LAUNCH_E2E_MARK"`, "sh", strconv.Itoa(i))
		want := fmt.Sprintf("%d %s\n", i, strings.TrimPrefix(mark, "LAUNCH_E2E_MARK="))
		if r.Code != 0 || r.Stdout != want {
			return fmt.Errorf("launch %d: exit %d, stdout %q (want %q), stderr %q", i, r.Code, r.Stdout, want, r.Stderr)
		}
		return nil
	}

	t.Run("concurrent-64", func(t *testing.T) {
		const n = 64
		mark := marker(t)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = one(t, mark, i)
			}()
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		t.Logf("%d simultaneous launches took %v (a figure for the log; make bench measures it)", n, time.Since(t0).Round(time.Millisecond))
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
				if failed <= 5 {
					t.Error(err)
				}
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d simultaneous launches failed", failed, n)
		}
		noneMarked(t, mark)
		noHostMounts(t, img)
	})

	t.Run("sequential-200", func(t *testing.T) {
		const n = 200
		mark := marker(t)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if err := one(t, mark, i); err != nil {
				t.Fatalf("after %d good launches: %v", i, err)
			}
		}
		t.Logf("%d launches in a row took %v", n, time.Since(t0).Round(time.Millisecond))
		noneMarked(t, mark)
		noHostMounts(t, img)
	})
}
