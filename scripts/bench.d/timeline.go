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

// tcase is one command of the timeline benchmark and its milestones.
type tcase struct {
	key, label string
	argv       []string
	env        []string                   // NAME=VALUE added to the environment
	order      []string                   // milestones in the order first seen
	offsets    map[string][]time.Duration // since the fork
}

// runOnce runs the case once with LAUNCH_TIMELINE=1 and records the
// milestones when record is set.
func (c *tcase) runOnce(env []string, record bool) error {
	var stderr bytes.Buffer
	cmd := &exec.Cmd{Path: c.argv[0], Args: c.argv, Env: env, Stderr: &stderr}
	t0 := monoUS()
	err := cmd.Run()
	t1 := monoUS()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(c.argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	if !record {
		return nil
	}
	add := func(name string, us int64) {
		if _, ok := c.offsets[name]; !ok {
			c.order = append(c.order, name)
		}
		c.offsets[name] = append(c.offsets[name], time.Duration(us-t0)*time.Microsecond)
	}
	add("driver fork", t0)
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "launch-timeline:" {
			continue
		}
		if us, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			add(f[3]+" "+f[4], us)
		}
	}
	add("driver wait returned", t1)
	return nil
}

// timelineCmd runs the launch commands of SPEC (as for latency) N times,
// interleaved, with LAUNCH_TIMELINE=1, and reports for each the median
// offset of every milestone from the fork and from the milestone before.
func timelineCmd(args []string) error {
	fs := flag.NewFlagSet("timeline", flag.ExitOnError)
	n := fs.Int("n", 50, "timed runs per case")
	warmup := fs.Int("warmup", 5, "untimed warm-up runs per case")
	kvPath := fs.String("kv", "", "also write NAME=VALUE lines here")
	_ = fs.Parse(args)
	if fs.NArg() != 1 || *n < 1 {
		usage()
	}
	spec, err := parseSpec(fs.Arg(0))
	if err != nil {
		return err
	}
	var cases []*tcase
	for _, s := range spec {
		if len(s.cmds) != 1 {
			return fmt.Errorf("case %s: timeline cases are single commands", s.key)
		}
		cases = append(cases, &tcase{key: s.key, label: s.label, argv: s.cmds[0], env: s.envs[0], offsets: map[string][]time.Duration{}})
	}
	env := append(os.Environ(), "LAUNCH_TIMELINE=1")
	for round := 0; round < *warmup+*n; round++ {
		for _, c := range cases {
			if err := c.runOnce(append(env[:len(env):len(env)], c.env...), round >= *warmup); err != nil {
				return err
			}
		}
	}

	var kv bytes.Buffer
	fmt.Printf("| Milestone |")
	for _, c := range cases {
		fmt.Printf(" %s: ms since fork | step |", c.label)
	}
	fmt.Printf("\n|---|")
	for range cases {
		fmt.Printf("---:|---:|")
	}
	fmt.Println()
	for _, name := range cases[0].order {
		fmt.Printf("| %s |", name)
		for _, c := range cases {
			ds, ok := c.offsets[name]
			if !ok {
				fmt.Printf(" – | – |")
				continue
			}
			med := median(ds)
			step := "–"
			if i := indexOf(c.order, name); i > 0 {
				step = ms(med - median(c.offsets[c.order[i-1]]))
			}
			fmt.Printf(" %s | %s |", ms(med), step)
			fmt.Fprintf(&kv, "timeline.%s.%s_us=%d\n", c.key, strings.ReplaceAll(name, " ", "."), med.Microseconds())
		}
		fmt.Println()
	}
	return writeKV(*kvPath, kv.Bytes())
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
