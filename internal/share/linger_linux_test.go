package share

import (
	"testing"
	"time"
)

// TestLingerWindow: Linger returns once its window has passed with no
// client, and at once when quit is closed while none is connected. (That a
// client restarts the window needs a mount to hand out: e2e
// TestWarmSecondLaunch.)
func TestLingerWindow(t *testing.T) {
	id := testIdentity(t)
	cases := []struct {
		name        string
		window      time.Duration
		quitAt      time.Duration // close quit after this long (0: never)
		least, most time.Duration
	}{
		{name: "no window", window: 0, least: 0, most: 100 * time.Millisecond},
		{name: "window", window: 300 * time.Millisecond, least: 300 * time.Millisecond, most: time.Second},
		{name: "quit", window: 10 * time.Second, quitAt: 50 * time.Millisecond, least: 50 * time.Millisecond, most: time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, _, err := Claim(id, true)
			if err != nil || h == nil {
				t.Fatalf("Claim = %v, %v", h, err)
			}
			defer h.Stop()
			quit := make(chan struct{})
			if c.quitAt > 0 {
				time.AfterFunc(c.quitAt, func() { close(quit) })
			}
			start := time.Now()
			h.Linger(c.window, quit)
			if d := time.Since(start); d < c.least || d > c.most {
				t.Errorf("Linger returned after %v, want between %v and %v", d, c.least, c.most)
			}
			if h2, _, err := Claim(id, true); err != nil || h2 == nil {
				t.Errorf("Claim after Linger = %v, %v; want a new holder", h2, err)
			} else {
				h2.Stop()
			}
		})
	}
}
