package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// monoUS is CLOCK_MONOTONIC in microseconds, the clock launch stamps its
// timeline with.
func monoUS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

// timelineCmd runs a launch command N times with LAUNCH_TIMELINE=1 and
// reports the median offset of each milestone from the fork.
func timelineCmd(args []string) error {
	fs := flag.NewFlagSet("timeline", flag.ExitOnError)
	n := fs.Int("n", 50, "timed runs")
	warmup := fs.Int("warmup", 5, "untimed warm-up runs")
	kvPath := fs.String("kv", "", "also write NAME=VALUE lines here")
	_ = fs.Parse(args)
	if fs.NArg() < 1 || *n < 1 {
		usage()
	}
	argv := fs.Args()
	p, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	argv[0] = p
	env := append(os.Environ(), "LAUNCH_TIMELINE=1")

	var order []string                      // milestone names in the order first seen
	offsets := map[string][]time.Duration{} // since the fork
	for run := 0; run < *warmup+*n; run++ {
		var stderr bytes.Buffer
		cmd := &exec.Cmd{Path: argv[0], Args: argv, Env: env, Stderr: &stderr}
		t0 := monoUS()
		err := cmd.Run()
		t1 := monoUS()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
		}
		if run < *warmup {
			continue
		}
		add := func(name string, us int64) {
			if _, ok := offsets[name]; !ok {
				order = append(order, name)
			}
			offsets[name] = append(offsets[name], time.Duration(us-t0)*time.Microsecond)
		}
		add("driver fork", t0)
		sc := bufio.NewScanner(&stderr)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 5 || f[0] != "launch-timeline:" {
				continue
			}
			us, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				continue
			}
			add(f[3]+" "+f[4], us)
		}
		add("driver wait returned", t1)
	}

	var kv bytes.Buffer
	fmt.Printf("| Milestone | median ms since fork | median ms since previous |\n")
	fmt.Printf("|---|---:|---:|\n")
	var prev time.Duration
	for i, name := range order {
		med := median(offsets[name])
		step := "–"
		if i > 0 {
			step = ms(med - prev)
		}
		fmt.Printf("| %s | %s | %s |\n", name, ms(med), step)
		fmt.Fprintf(&kv, "timeline.%s_us=%d\n", strings.ReplaceAll(name, " ", "."), med.Microseconds())
		prev = med
	}
	return writeKV(*kvPath, kv.Bytes())
}
