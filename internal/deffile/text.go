package deffile

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxSize bounds a definition file and a build-arg file (4 MiB): real ones
// are a few KiB, and the whole file is held in memory.
const MaxSize = 4 << 20

// checkText rejects data that is not a text file: too large, NUL bytes,
// invalid UTF-8, or a byte-order mark (which Apptainer reads as part of the
// first header keyword and rejects with a puzzling message).
func checkText(file string, data []byte) error {
	if len(data) > MaxSize {
		return &Error{File: file, Msg: fmt.Sprintf("is larger than %d MiB: not a definition file", MaxSize>>20)}
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return &Error{File: file, Line: 1, Msg: "starts with a UTF-8 byte-order mark: save the file without it"}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return &Error{File: file, Line: lineOf(data, i), Msg: "contains a NUL byte: not a text file"}
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return &Error{File: file, Line: lineOf(data, i), Msg: "is not valid UTF-8: not a text file"}
	}
	return nil
}

// lineOf returns the 1-based line of byte offset off.
func lineOf(data []byte, off int) int { return 1 + bytes.Count(data[:off], []byte("\n")) }

// line is one line of a definition: its text without the line end (a
// trailing "\r" dropped, as Apptainer's line scanner does) and its number
// in the file.
type line struct {
	text string
	num  int
	off  int // byte offset of the line in the text it was split from
}

// splitLines splits text into lines. nums gives the file line of each line
// (nums[i] for the i-th); with nil nums, lines are numbered from first. A
// final line without "\n" is a line; an empty text has none.
func splitLines(text string, first int, nums []int) []line {
	var lines []line
	off := 0
	for i := 0; off < len(text); i++ {
		end := strings.IndexByte(text[off:], '\n')
		next := len(text)
		if end >= 0 {
			end += off
			next = end + 1
		} else {
			end = len(text)
		}
		num := first + i
		if nums != nil && i < len(nums) {
			num = nums[i]
		}
		lines = append(lines, line{text: strings.TrimSuffix(text[off:end], "\r"), num: num, off: off})
		off = next
	}
	return lines
}

// stageStart matches the line that starts a stage, as Apptainer splits a
// file into stages: "bootstrap:" in any case at the very start of a line.
var stageStart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)^bootstrap:`) })

// isBlankOrComment reports whether a line is empty or a "#" comment once
// trimmed (Apptainer's rule for header, %files and %labels lines).
func isBlankOrComment(s string) bool {
	t := strings.TrimSpace(s)
	return t == "" || t[0] == '#'
}

// sectionWord reports whether a line starts a section: its first word
// (after any white space, as Apptainer's word scanner skips it) starts with
// "%". indented says whether white space came first.
func sectionWord(s string) (ok, indented bool) {
	t := strings.TrimLeftFunc(s, unicode.IsSpace)
	return strings.HasPrefix(t, "%"), len(t) != len(s)
}
