// Command benchdrv is the timing driver of scripts/bench (`make bench`). It is
// a benchmark helper, not a test: it measures and prints, and never judges.
//
//	benchdrv latency [-n 200] [-warmup 10] [-baseline KEY] [-kv FILE] SPEC
//	benchdrv concurrent [-k 20,64] [-reps 5] [-kv FILE] -- CMD [ARG ...]
//	benchdrv timeline [-n 50] [-warmup 5] [-kv FILE] SPEC
//	benchdrv firstout [-n 10] [-warmup 1] [-lines KEY=N,...] [-kv FILE] SPEC
//	benchdrv ocilayout [-tag T] [-push REF] TREE OUTDIR
//	benchdrv registry -dir DIR -hostfile FILE
//
// latency runs every case of SPEC N times, interleaved round-robin (A, B, C,
// A, B, C, ...) so that load from elsewhere on the machine hits all cases
// alike, after W interleaved warm-up rounds that are not counted. SPEC has one
// case per line: KEY<TAB>LABEL<TAB>ARG0<TAB>ARG1..., where a field "&&" starts
// another command run after the first (the case's time is the sum; a failure
// stops the sequence), and NAME=VALUE fields before a command's ARG0 are
// added to its environment (no env process in between). Each run is timed from just before fork to just after
// wait, with the monotonic clock (time.Now/time.Since), stdout and stderr going
// to /dev/null. It prints a markdown table: median, min, p90 and max, and the
// ratio of each median to the median of the -baseline case.
//
// concurrent starts K copies of CMD at once (one goroutine each, released
// together), waits for all, and reports the wall time from release to the
// last exit and how many failed (non-zero exit or failure to start), for each
// K, R times (the Ks alternate).
//
// timeline runs the launch commands of SPEC (one command per case) N times,
// interleaved, with LAUNCH_TIMELINE=1, and merges the milestones launch
// prints (internal/timeline) with its own stamps taken just before fork and
// just after wait, all on CLOCK_MONOTONIC. It prints a markdown table: for
// each milestone and case, the median time since the fork and since the
// previous milestone.
//
// firstout runs the commands of SPEC (parallel steps: `srun … launch exec …`
// against the same step bare) N times, interleaved, and reports the median
// time from just before fork to the first byte on stdout and to the exit;
// -lines KEY=N says how many lines (ranks) a case must print to count
// (scripts/bench-cluster).
//
// ocilayout makes a single-layer OCI image of a directory tree as an OCI
// image layout (and pushes it to a registry with -push); registry runs a
// local docker-registry until it is signalled. Both are set-up for the
// pull benchmark, untimed.
//
// -kv FILE also writes the figures as NAME=VALUE lines for the script.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "latency":
		err = latency(os.Args[2:])
	case "concurrent":
		err = concurrent(os.Args[2:])
	case "timeline":
		err = timelineCmd(os.Args[2:])
	case "firstout":
		err = firstOutCmd(os.Args[2:])
	case "ocilayout":
		err = ociLayoutCmd(os.Args[2:])
	case "registry":
		err = registryCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchdrv:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchdrv latency [-n N] [-warmup W] [-baseline KEY] [-kv FILE] SPEC\n"+
		"       benchdrv concurrent [-k K1,K2] [-reps R] [-kv FILE] -- CMD [ARG ...]\n"+
		"       benchdrv timeline [-n N] [-warmup W] [-kv FILE] SPEC\n"+
		"       benchdrv firstout [-n N] [-warmup W] [-lines KEY=N,...] [-kv FILE] SPEC\n"+
		"       benchdrv ocilayout [-tag T] [-push REF] TREE OUTDIR\n"+
		"       benchdrv registry -dir DIR -hostfile FILE")
	os.Exit(2)
}

// bcase is one latency case: a sequence of commands timed together.
type bcase struct {
	key, label string
	cmds       [][]string // argv of each command; argv[0] resolved to a path
	envs       [][]string // NAME=VALUE fields before each command's argv[0]
	times      []time.Duration
	failures   int
}

func parseSpec(path string) ([]*bcase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cases []*bcase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s: bad line %q (want KEY<TAB>LABEL<TAB>ARGV...)", path, line)
		}
		c := &bcase{key: fields[0], label: fields[1]}
		var argv, env []string
		for _, a := range append(fields[2:], "&&") {
			if a != "&&" {
				if len(argv) == 0 && strings.Contains(a, "=") && !strings.HasPrefix(a, "/") {
					env = append(env, a)
					continue
				}
				argv = append(argv, a)
				continue
			}
			if len(argv) == 0 {
				return nil, fmt.Errorf("%s: empty command in %q", path, line)
			}
			p, err := exec.LookPath(argv[0])
			if err != nil {
				return nil, fmt.Errorf("case %s: %w", c.key, err)
			}
			argv[0] = p
			c.cmds = append(c.cmds, argv)
			c.envs = append(c.envs, env)
			argv, env = nil, nil
		}
		cases = append(cases, c)
	}
	return cases, sc.Err()
}

// withEnv is the driver's environment plus extra (nil, inheriting it, when
// there is none).
func withEnv(extra []string) []string {
	if len(extra) == 0 {
		return nil
	}
	return append(os.Environ(), extra...)
}

// runOnce runs the case's commands in sequence and returns the time taken
// and the first error. Command structs are made before the clock starts.
func (c *bcase) runOnce(stdout, stderr io.Writer) (time.Duration, error) {
	cmds := make([]*exec.Cmd, len(c.cmds))
	for i, argv := range c.cmds {
		cmds[i] = &exec.Cmd{Path: argv[0], Args: argv, Env: withEnv(c.envs[i]), Stdout: stdout, Stderr: stderr}
	}
	t0 := time.Now()
	for _, cmd := range cmds {
		if err := cmd.Run(); err != nil {
			return time.Since(t0), fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
		}
	}
	return time.Since(t0), nil
}

func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	n := fs.Int("n", 200, "timed runs per case")
	warmup := fs.Int("warmup", 10, "untimed warm-up runs per case")
	baseline := fs.String("baseline", "", "KEY of the case the medians are divided by")
	baseLabel := fs.String("baseline-label", "`unshare -Urm true`", "how the ratio column names the baseline")
	kvPath := fs.String("kv", "", "also write NAME=VALUE lines here")
	_ = fs.Parse(args)
	if fs.NArg() != 1 || *n < 1 {
		usage()
	}
	cases, err := parseSpec(fs.Arg(0))
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()

	// A few thousand exec.Cmd values are a few MB: no collector pauses
	// inside the timed region.
	debug.SetGCPercent(-1)
	fmt.Fprintf(os.Stderr, "benchdrv: %d cases x (%d warm-up + %d timed), interleaved\n", len(cases), *warmup, *n)
	start := time.Now()
	for round := 0; round < *warmup+*n; round++ {
		for _, c := range cases {
			d, err := c.runOnce(devnull, devnull)
			if round < *warmup {
				continue
			}
			if err != nil {
				c.failures++
				continue
			}
			c.times = append(c.times, d)
		}
		if (round+1)%50 == 0 {
			fmt.Fprintf(os.Stderr, "benchdrv: round %d/%d (%.0fs)\n", round+1, *warmup+*n, time.Since(start).Seconds())
		}
	}
	debug.SetGCPercent(100)

	// Show why a failing case failed: run it once more with stderr kept.
	for _, c := range cases {
		if c.failures == 0 {
			continue
		}
		var buf bytes.Buffer
		_, err := c.runOnce(io.Discard, &buf)
		fmt.Fprintf(os.Stderr, "benchdrv: %s failed %d of %d times; a rerun says: %v %s\n",
			c.key, c.failures, *n, err, strings.TrimSpace(buf.String()))
	}

	var base time.Duration
	for _, c := range cases {
		if c.key == *baseline && len(c.times) > 0 {
			base = median(c.times)
		}
	}
	var kv bytes.Buffer
	fmt.Printf("| Command | runs | median | min | p90 | max | median ÷ %s | failures |\n", *baseLabel)
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cases {
		ok := len(c.times)
		fmt.Fprintf(&kv, "latency.%s.runs=%d\nlatency.%s.failures=%d\n", c.key, ok, c.key, c.failures)
		if ok == 0 {
			fmt.Printf("| %s | 0 | – | – | – | – | – | %d |\n", c.label, c.failures)
			continue
		}
		s := sorted(c.times)
		med, p90 := median(c.times), s[(len(s)*9+9)/10-1]
		ratio := "–"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f×", float64(med)/float64(base))
			fmt.Fprintf(&kv, "latency.%s.ratio=%.3f\n", c.key, float64(med)/float64(base))
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %d |\n",
			c.label, ok, ms(med), ms(s[0]), ms(p90), ms(s[len(s)-1]), ratio, c.failures)
		fmt.Fprintf(&kv, "latency.%s.median_us=%d\nlatency.%s.min_us=%d\nlatency.%s.max_us=%d\n",
			c.key, med.Microseconds(), c.key, s[0].Microseconds(), c.key, s[len(s)-1].Microseconds())
	}
	return writeKV(*kvPath, kv.Bytes())
}

func concurrent(args []string) error {
	fs := flag.NewFlagSet("concurrent", flag.ExitOnError)
	ks := fs.String("k", "20,64", "comma-separated numbers of simultaneous copies")
	reps := fs.Int("reps", 5, "repetitions of each K")
	kvPath := fs.String("kv", "", "also write NAME=VALUE lines here")
	_ = fs.Parse(args)
	if fs.NArg() < 1 || *reps < 1 {
		usage()
	}
	argv := fs.Args()
	p, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	argv[0] = p
	var kList []int
	for _, s := range strings.Split(*ks, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return fmt.Errorf("bad -k %q", *ks)
		}
		kList = append(kList, k)
	}
	walls := make(map[int][]time.Duration)
	fails := make(map[int]int)
	var firstErr string
	for r := 0; r < *reps; r++ {
		for _, k := range kList {
			wall, nfail, msg := burst(k, argv)
			walls[k] = append(walls[k], wall)
			fails[k] += nfail
			if firstErr == "" && msg != "" {
				firstErr = msg
			}
			fmt.Fprintf(os.Stderr, "benchdrv: %d at once: %s, %d failed\n", k, ms(wall), nfail)
		}
	}
	if firstErr != "" {
		fmt.Fprintf(os.Stderr, "benchdrv: first failure: %s\n", firstErr)
	}
	var kv bytes.Buffer
	fmt.Printf("| Simultaneous launches | bursts | median wall time | min | max | failed launches |\n")
	fmt.Printf("|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range kList {
		s := sorted(walls[k])
		med := median(walls[k])
		fmt.Printf("| %d | %d | %s | %s | %s | %d of %d |\n", k, *reps, ms(med), ms(s[0]), ms(s[len(s)-1]), fails[k], k**reps)
		fmt.Fprintf(&kv, "concurrent.%d.median_us=%d\nconcurrent.%d.max_us=%d\nconcurrent.%d.failures=%d\nconcurrent.%d.launches=%d\n",
			k, med.Microseconds(), k, s[len(s)-1].Microseconds(), k, fails[k], k, k**reps)
	}
	return writeKV(*kvPath, kv.Bytes())
}

// burst starts k copies of argv together and waits for all of them.
func burst(k int, argv []string) (time.Duration, int, string) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		nfail   int
		firstEr string
	)
	release := make(chan struct{})
	cmds := make([]*exec.Cmd, k)
	errBufs := make([]*bytes.Buffer, k)
	for i := range cmds {
		errBufs[i] = new(bytes.Buffer)
		cmds[i] = &exec.Cmd{Path: argv[0], Args: argv, Stderr: errBufs[i]}
	}
	for i := range cmds {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-release
			if err := cmds[i].Run(); err != nil {
				mu.Lock()
				nfail++
				if firstEr == "" {
					firstEr = fmt.Sprintf("%v: %s", err, strings.TrimSpace(errBufs[i].String()))
				}
				mu.Unlock()
			}
		}(i)
	}
	time.Sleep(20 * time.Millisecond) // let every goroutine reach the barrier
	t0 := time.Now()
	close(release)
	wg.Wait()
	return time.Since(t0), nfail, firstEr
}

func sorted(ds []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func median(ds []time.Duration) time.Duration {
	s := sorted(ds)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ms formats a duration in milliseconds with microsecond resolution.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000)
}

func writeKV(path string, b []byte) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
