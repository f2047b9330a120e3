package main

// firstout: how long a parallel step takes to show its first output and
// all of it (scripts/bench-cluster: srun steps of many ranks).

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// firstWriter records when its first byte arrived and counts lines.
type firstWriter struct {
	mu    sync.Mutex
	first time.Time
	lines int
}

func (w *firstWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first.IsZero() && len(p) > 0 {
		w.first = time.Now()
	}
	w.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// firstOutCmd runs every case of SPEC N times, interleaved, each run timed
// from just before fork to its first byte on stdout and to its exit; a run
// counts only if it printed -lines lines (every rank's) and exited 0. It
// prints a markdown table of the medians.
func firstOutCmd(args []string) error {
	fs := flag.NewFlagSet("firstout", flag.ExitOnError)
	n := fs.Int("n", 10, "timed runs per case")
	warmup := fs.Int("warmup", 1, "untimed warm-up runs per case")
	lines := fs.String("lines", "", "KEY=N,...: the lines each case must print (default: any)")
	kvPath := fs.String("kv", "", "also write NAME=VALUE lines here")
	_ = fs.Parse(args)
	if fs.NArg() != 1 || *n < 1 {
		usage()
	}
	cases, err := parseSpec(fs.Arg(0))
	if err != nil {
		return err
	}
	want := map[string]int{}
	for _, kv := range strings.Split(*lines, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			var x int
			fmt.Sscan(v, &x)
			want[k] = x
		}
	}
	first := make([][]time.Duration, len(cases))
	for round := 0; round < *warmup+*n; round++ {
		for i, c := range cases {
			w := &firstWriter{}
			var errBuf bytes.Buffer
			t0 := time.Now()
			d, err := c.runOnce(w, &errBuf)
			if err == nil && want[c.key] > 0 && w.lines != want[c.key] {
				err = fmt.Errorf("%d lines, want %d", w.lines, want[c.key])
			}
			if round < *warmup {
				continue
			}
			if err != nil || w.first.IsZero() {
				c.failures++
				fmt.Fprintf(os.Stderr, "benchdrv: %s: %v %s\n", c.key, err, strings.TrimSpace(errBuf.String()))
				continue
			}
			first[i] = append(first[i], w.first.Sub(t0))
			c.times = append(c.times, d)
		}
	}
	var kv bytes.Buffer
	fmt.Printf("| Step | runs | first output (median) | all done (median) | min all done | failures |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|\n")
	for i, c := range cases {
		if len(c.times) == 0 {
			fmt.Printf("| %s | 0 | – | – | – | %d |\n", c.label, c.failures)
			continue
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %d |\n", c.label, len(c.times), ms(median(first[i])), ms(median(c.times)), ms(sorted(c.times)[0]), c.failures)
		fmt.Fprintf(&kv, "firstout.%s.first_ms=%.1f\nfirstout.%s.done_ms=%.1f\n", c.key,
			float64(median(first[i]).Microseconds())/1000, c.key, float64(median(c.times).Microseconds())/1000)
	}
	return writeKV(*kvPath, kv.Bytes())
}
