package deffile

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// placeholder is a template variable, as Apptainer matches it: "{{", optional
// white space (newlines too), a word of [0-9A-Za-z_], optional white space,
// "}}".
// Compiled on first use (as the others here): a launch that runs an image
// must not pay for compiling them at start-up.
var placeholder = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`{{\s*(\w+)\s*}}`) })

// word is what a build-argument name must be to be usable in a placeholder.
var word = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\w+$`) })

// expansion is the result of templating one stage's text.
type expansion struct {
	text string
	nums []int           // file line of each line of text
	used map[string]bool // variables that took a value (directly or nested)
}

// expand fills the placeholders of one stage's text (whose first line is
// file line first) from args, then defaults, as Apptainer does:
//
//   - A placeholder is left as it is when its line, from the line start (or
//     from the end of the previous filled placeholder on the line) up to the
//     placeholder, contains a "#" followed by a character other than "!": the
//     line is taken to be a comment there. "#!/bin/{{ SH }}" is filled.
//   - A value may itself hold placeholders; those are filled once more from
//     args then defaults, and left as they are when neither has the name
//     (see expandNested).
//   - A placeholder whose name has no value is an error naming it.
//
// Unlike Apptainer, a variable used only inside another's value counts as
// used (Apptainer reports it unused and fails the build by default).
func expand(file, src string, first int, args, defaults map[string]string) (*expansion, error) {
	ex := &expansion{nums: []int{first}, used: map[string]bool{}}
	var out strings.Builder
	// lineAt tracks the file line of offsets of src, which only grow.
	pos, cur := 0, first
	lineAt := func(off int) int {
		cur += strings.Count(src[pos:off], "\n")
		pos = off
		return cur
	}
	// emit writes s, recording for each newline the file line the next
	// output line comes from.
	emit := func(s string, next func() int) {
		for {
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				out.WriteString(s)
				return
			}
			out.WriteString(s[:i+1])
			ex.nums = append(ex.nums, next())
			s = s[i+1:]
		}
	}
	copySrc := func(from, to int) {
		seg := src[from:to]
		off := from
		emit(seg, func() int {
			nl := off + strings.IndexByte(src[off:to], '\n')
			off = nl + 1
			return lineAt(nl) + 1
		})
	}

	// The comment test looks at the text from the last newline, or from
	// the end of the last filled placeholder, up to the placeholder: it is
	// scanned once, as the placeholders come.
	seg, scan, commented := 0, 0, false
	advance := func(to int) {
		for ; scan < to; scan++ {
			if src[scan] == '\n' {
				seg, commented = scan, false
			} else if scan > seg && src[scan-1] == '#' && src[scan] != '!' {
				commented = true
			}
		}
	}

	i := 0
	for _, m := range placeholder().FindAllStringSubmatchIndex(src, -1) {
		if advance(m[0]); commented {
			continue
		}
		name := src[m[2]:m[3]]
		val, ok := args[name]
		if !ok {
			val, ok = defaults[name]
		}
		if !ok {
			return nil, &Error{File: file, Line: lineAt(m[0]), Msg: fmt.Sprintf(
				"build variable %s has no value: give --build-arg %s=VALUE (or --build-arg-file), or a default in %%arguments", name, name)}
		}
		ex.used[name] = true
		val, ok = expandNested(val, args, defaults, ex.used)
		copySrc(i, m[0])
		at := lineAt(m[0])
		if !ok || out.Len()+len(val) > MaxSize {
			return nil, &Error{File: file, Line: at, Msg: fmt.Sprintf(
				"filling {{ %s }} makes the definition larger than %d MiB", name, MaxSize>>20)}
		}
		emit(val, func() int { return at })
		i = m[1]
		seg, scan, commented = i, i, false
	}
	copySrc(i, len(src))
	if out.Len() > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("templating makes the definition larger than %d MiB", MaxSize>>20)}
	}
	ex.text = out.String()
	return ex, nil
}

// expandNested fills the placeholders inside a value, in one pass: each
// one whose name has a build-argument or default value is replaced by it,
// the others stay. (Apptainer replaces each in turn everywhere in the value,
// which differs only when a value holds placeholder text itself.) It returns
// false when the result would exceed MaxSize.
func expandNested(val string, args, defaults map[string]string, used map[string]bool) (string, bool) {
	ms := placeholder().FindAllStringSubmatchIndex(val, -1)
	if len(ms) == 0 {
		return val, true
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		name := val[m[2]:m[3]]
		v, ok := args[name]
		if !ok {
			v, ok = defaults[name]
		}
		if !ok {
			continue
		}
		if b.Len()+m[0]-last+len(v) > MaxSize {
			return "", false
		}
		b.WriteString(val[last:m[0]])
		b.WriteString(v)
		last = m[1]
		used[name] = true
	}
	b.WriteString(val[last:])
	return b.String(), b.Len() <= MaxSize
}

// keyValue splits "KEY=VALUE" as Apptainer does: at the first "=", key and
// value trimmed; the value keeps any quotes ("a b" stays "\"a b\"").
func keyValue(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%q is not KEY=VALUE", s)
	}
	if k = strings.TrimSpace(k); k == "" {
		return "", "", fmt.Errorf("%q has no KEY before the =", s)
	}
	return k, strings.TrimSpace(v), nil
}

// ParseBuildArg parses one --build-arg value, "KEY=VALUE". Unlike Apptainer,
// a KEY that no placeholder could name (not [0-9A-Za-z_]+) is an error here
// rather than an "unused build argument" later.
func ParseBuildArg(s string) (key, value string, err error) {
	k, v, err := keyValue(s)
	if err != nil {
		return "", "", fmt.Errorf("--build-arg %w", err)
	}
	if !word().MatchString(k) {
		return "", "", fmt.Errorf("--build-arg %q: the name %q is not a word of letters, digits and _", s, k)
	}
	if !utf8.ValidString(v) {
		return "", "", fmt.Errorf("--build-arg %s: the value is not valid UTF-8 text", k)
	}
	return k, v, nil
}

// ParseBuildArgFile parses the text of a --build-arg-file: one KEY=VALUE per
// line, a later line winning. Lines that are not KEY=VALUE are skipped with a
// warning, as in Apptainer; blank lines and "#" comment lines are skipped
// silently (Apptainer warns about blank ones and takes "# K=V" for a
// variable named "# K").
func ParseBuildArgFile(file string, data []byte) (map[string]string, []Warning, error) {
	if err := checkText(file, data); err != nil {
		return nil, nil, err
	}
	args := map[string]string{}
	var warnings []Warning
	for _, ln := range splitLines(string(data), 1, nil) {
		if isBlankOrComment(ln.text) {
			continue
		}
		k, v, err := keyValue(ln.text)
		if err != nil {
			warnings = append(warnings, Warning{File: file, Line: ln.num, Msg: "skipped: " + err.Error()})
			continue
		}
		if !word().MatchString(k) {
			return nil, nil, &Error{File: file, Line: ln.num, Msg: fmt.Sprintf(
				"build variable name %q is not a word of letters, digits and _", k)}
		}
		args[k] = v
	}
	return args, warnings, nil
}

// parseDefaults reads the KEY=VALUE lines of a stage's %arguments sections
// (before templating, as Apptainer does); other lines are skipped with a
// warning, as in Apptainer.
func parseDefaults(file string, lines []line) (map[string]string, []Warning) {
	defaults := map[string]string{}
	var warnings []Warning
	for _, ln := range lines {
		if isBlankOrComment(ln.text) {
			continue
		}
		k, v, err := keyValue(strings.TrimSpace(ln.text))
		if err != nil {
			warnings = append(warnings, Warning{File: file, Line: ln.num, Msg: "%arguments line skipped: " + err.Error()})
			continue
		}
		defaults[k] = v
	}
	return defaults, warnings
}
