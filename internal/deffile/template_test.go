package deffile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExpand: Apptainer's templating rules, one per case.
func TestExpand(t *testing.T) {
	args := map[string]string{"A": "1", "SH": "bash", "NESTED": "<{{ B }}>"}
	defaults := map[string]string{"A": "default", "B": "2", "D": "d:{{ A }}:{{ UNKNOWN }}", "SELF": "{{ SELF }}"}
	for _, c := range []struct {
		name, src, want string
		used            []string
	}{
		{"none", "echo hi\n", "echo hi\n", nil},
		{"spaces", "x{{ A }}y {{A}} {{  A\t}}", "x1y 1 1", []string{"A"}},
		{"build arg wins over default", "{{ A }} {{ B }}", "1 2", []string{"A", "B"}},
		{"newline inside the braces", "{{\nA\n}}", "1", []string{"A"}},
		{"not a word", "{{ A-B }} {{ }} {A} {{{ A }}}", "{{ A-B }} {{ }} {A} {1}", []string{"A"}},
		{"comment line left", "  # {{ A }}\n", "  # {{ A }}\n", nil},
		{"trailing comment left", "echo {{ A }} # {{ A }}\n", "echo 1 # {{ A }}\n", []string{"A"}},
		{"shebang filled", "#!/bin/{{ SH }}\n", "#!/bin/bash\n", []string{"SH"}},
		{"# right before the braces is filled (Apptainer's rule)", "#{{ A }}", "#1", []string{"A"}},
		{"# anywhere before counts (${#x} too, as in Apptainer)", "echo ${#x} {{ A }}", "echo ${#x} {{ A }}", nil},
		{"comment on another line does not count", "# c\n{{ A }}", "# c\n1", []string{"A"}},
		{"after a filled one, only the text since it counts", "{{ A }}#{{ A }}", "1#1", []string{"A"}},
		{"nested from defaults", "{{ D }}", "d:1:{{ UNKNOWN }}", []string{"A", "D"}},
		{"nested in a build arg", "{{ NESTED }}", "<2>", []string{"B", "NESTED"}},
		{"nested only once", "{{ SELF }}", "{{ SELF }}", []string{"SELF"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex, err := expand("t.def", c.src, 1, args, defaults)
			if err != nil {
				t.Fatal(err)
			}
			var used []string
			for k := range ex.used {
				used = append(used, k)
			}
			sort.Strings(used)
			if ex.text != c.want || !reflect.DeepEqual(used, c.used) {
				t.Errorf("expand(%q) = %q used %v; want %q used %v", c.src, ex.text, used, c.want, c.used)
			}
		})
	}
}

// TestExpandLines: each line of the output knows the file line it comes
// from, so errors after templating point at the right line.
func TestExpandLines(t *testing.T) {
	ex, err := expand("t.def", "a\n{{ V }} b\nc {{\nV }}\nd\n", 10, map[string]string{"V": "x\ny"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ex.text != "a\nx\ny b\nc x\ny\nd\n" {
		t.Fatalf("text = %q", ex.text)
	}
	var nums []int
	for _, ln := range splitLines(ex.text, 10, ex.nums) {
		nums = append(nums, ln.num)
	}
	if want := []int{10, 11, 11, 12, 12, 14}; !reflect.DeepEqual(nums, want) {
		t.Errorf("lines = %v, want %v", nums, want)
	}
}

// TestUnusedArgs: arguments no stage used are reported, sorted; one used
// by any stage, or inside another value, is used.
func TestUnusedArgs(t *testing.T) {
	text := "Bootstrap: docker\nFrom: {{ IMG }}\n%arguments\n X={{ INNER }}\n%post\n # {{ COMMENTED }}\n {{ X }}\n" +
		"Bootstrap: scratch\n%post\n {{ SECOND }}\n"
	d := parse(t, text, map[string]string{"IMG": "a", "INNER": "i", "SECOND": "s", "COMMENTED": "c", "ZZ": "", "AA": ""})
	if !reflect.DeepEqual(d.UnusedArgs, []string{"AA", "COMMENTED", "ZZ"}) {
		t.Errorf("UnusedArgs = %v", d.UnusedArgs)
	}
	if d.Stages[0].Post.Body != " # {{ COMMENTED }}\n i\n" || d.Stages[1].Post.Body != " s\n" {
		t.Errorf("posts %q %q", d.Stages[0].Post.Body, d.Stages[1].Post.Body)
	}
	// Defaults are read before templating and belong to their stage.
	if !reflect.DeepEqual(d.Stages[0].Defaults, map[string]string{"X": "{{ INNER }}"}) || len(d.Stages[1].Defaults) != 0 {
		t.Errorf("defaults %v %v", d.Stages[0].Defaults, d.Stages[1].Defaults)
	}
}

// TestParseBuildArg: --build-arg values.
func TestParseBuildArg(t *testing.T) {
	for _, c := range []struct {
		in, k, v, err string
	}{
		{in: "K=V", k: "K", v: "V"},
		{in: "  k1 = a whitespace  ", k: "k1", v: "a whitespace"},
		{in: "K=", k: "K", v: ""},
		{in: "K=a=b", k: "K", v: "a=b"},
		{in: `K="quoted value"`, k: "K", v: `"quoted value"`},
		{in: "K='  '", k: "K", v: "'  '"},
		{in: "K", err: `--build-arg "K" is not KEY=VALUE`},
		{in: "=v", err: `--build-arg "=v" has no KEY before the =`},
		{in: "A-B=v", err: `the name "A-B" is not a word`},
		{in: "K=\xff", err: "--build-arg K: the value is not valid UTF-8"},
	} {
		k, v, err := ParseBuildArg(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseBuildArg(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || k != c.k || v != c.v {
			t.Errorf("ParseBuildArg(%q) = %q, %q, %v", c.in, k, v, err)
		}
	}
}

// TestParseBuildArgFile: the --build-arg-file format.
func TestParseBuildArgFile(t *testing.T) {
	args, warnings, err := ParseBuildArgFile("a.txt", []byte("A=1\r\n\n# C=3\n  B = two words \nbroken\nA=again\n=x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(args, map[string]string{"A": "again", "B": "two words"}) {
		t.Errorf("args = %v", args)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	want := []string{`a.txt:5: skipped: "broken" is not KEY=VALUE`, `a.txt:7: skipped: "=x" has no KEY before the =`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %q", got)
	}
	for _, c := range []struct{ data, err string }{
		{"A=1\nB C=2\n", `a.txt:2: build variable name "B C" is not a word`},
		{"A=\x00\n", "a.txt:1: contains a NUL byte"},
	} {
		if _, _, err := ParseBuildArgFile("a.txt", []byte(c.data)); err == nil || err.Error()[:len(c.err)] != c.err {
			t.Errorf("ParseBuildArgFile(%q): %v, want %q", c.data, err, c.err)
		}
	}
}

// TestBuildArgsAndReadFile: reading files, the flags winning over the
// file, and files that must not be read.
func TestBuildArgsAndReadFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "args")
	if err := os.WriteFile(file, []byte("A=file\nB=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args, _, err := BuildArgs([]string{"B=flag", "C=one", "C=two"}, file)
	if err != nil || !reflect.DeepEqual(args, map[string]string{"A": "file", "B": "flag", "C": "two"}) {
		t.Errorf("BuildArgs = %v, %v", args, err)
	}
	if args, _, err := BuildArgs(nil, ""); err != nil || len(args) != 0 {
		t.Errorf("BuildArgs(none) = %v, %v", args, err)
	}
	if _, _, err := BuildArgs([]string{"nope"}, ""); err == nil {
		t.Error("BuildArgs(nope): no error")
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, err string }{
		{filepath.Join(dir, "missing"), ": cannot open: no such file or directory"},
		{dir, ": is not a regular file (a directory)"},
		{fifo, ": is not a regular file (a named pipe)"},
		{big, ": is larger than 4 MiB"},
	} {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(c.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.HasPrefix(err.Error(), c.path+c.err) {
				t.Errorf("ReadFile(%s) = %v, want %q", c.path, err, c.path+c.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadFile(%s) blocks", c.path)
		}
		if _, _, err := BuildArgs(nil, c.path); err == nil {
			t.Errorf("BuildArgs(file %s): no error", c.path)
		}
		if _, err := Load(c.path, nil); err == nil {
			t.Errorf("Load(%s): no error", c.path)
		}
	}
}

// apptainerExpand restates Apptainer's templating loop (its build-args
// reader: a backward scan for the line start, a comment pattern matched on
// the text before the placeholder, values replaced with ReplaceAll) to
// compare expand with.
func apptainerExpand(src string, args, defaults map[string]string) (string, error) {
	comment := regexp.MustCompile(`\s*[#][^!]\s*.*`)
	var out strings.Builder
	i := 0
	for _, m := range placeholder().FindAllStringSubmatchIndex(src, -1) {
		nl := i
		for p := m[0]; p >= nl; p-- {
			if src[p] == '\n' {
				nl = p
				break
			}
		}
		if comment.MatchString(src[nl:m[0]]) {
			continue
		}
		out.WriteString(src[i:m[0]])
		name := src[m[2]:m[3]]
		val, ok := args[name]
		if !ok {
			val, ok = defaults[name]
		}
		if !ok {
			return "", errors.New("undefined " + name)
		}
		newVal := val
		for _, n := range placeholder().FindAllStringSubmatchIndex(val, -1) {
			k := val[n[2]:n[3]]
			if v, ok := args[k]; ok {
				newVal = strings.ReplaceAll(newVal, val[n[0]:n[1]], v)
			} else if v, ok := defaults[k]; ok {
				newVal = strings.ReplaceAll(newVal, val[n[0]:n[1]], v)
			}
		}
		out.WriteString(newVal)
		i = m[1]
	}
	out.WriteString(src[i:])
	return out.String(), nil
}

// TestExpandMatchesApptainer compares expand with Apptainer's loop on every
// string of up to six pieces that matter to the comment rule.
func TestExpandMatchesApptainer(t *testing.T) {
	pieces := []string{"#", "!", "{{ A }}", "{{B}}", "\n", " ", "x"}
	args := map[string]string{"A": "a#{{ B }}"}
	defaults := map[string]string{"B": "b", "A": "unused"}
	var gen func(prefix string, n int)
	count := 0
	gen = func(prefix string, n int) {
		count++
		want, _ := apptainerExpand(prefix, args, defaults)
		ex, err := expand("t.def", prefix, 1, args, defaults)
		if err != nil || ex.text != want {
			t.Fatalf("expand(%q) = %q, %v; Apptainer gives %q", prefix, ex.text, err, want)
		}
		if n == 0 {
			return
		}
		for _, p := range pieces {
			gen(prefix+p, n-1)
		}
	}
	gen("", 5)
	if count < 19000 {
		t.Fatalf("only %d strings compared", count)
	}
}
