// Package msg prints the launcher's own messages on stderr at the level the
// user chose (-q, default, -v, -d). It owns nothing else: payload output never
// passes through here.
//
// It must not decide exit statuses or what is an error: callers do.
package msg

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Level is how much the launcher says about itself.
type Level int

// Levels, from quietest to loudest.
const (
	Quiet Level = iota - 1
	Normal
	Verbose
	Debug
)

// Logger writes leveled messages to one writer. The zero value is unusable;
// use New.
type Logger struct {
	level Level
	w     io.Writer
}

// New returns a Logger writing to w at level l.
func New(w io.Writer, l Level) *Logger { return &Logger{level: l, w: w} }

// Stderr returns a Logger on os.Stderr at level l.
func Stderr(l Level) *Logger { return New(os.Stderr, l) }

// Level reports the logger's level.
func (l *Logger) Level() Level { return l.level }

// Infof prints unless quiet.
func (l *Logger) Infof(format string, a ...any) { l.at(Normal, "", format, a...) }

// Warnf prints a warning unless quiet, clipped as Fatal clips.
func (l *Logger) Warnf(format string, a ...any) {
	if l == nil || l.level < Normal {
		return
	}
	fmt.Fprintf(l.w, "WARNING: %s\n", clip(joinLines(fmt.Sprintf(format, a...))))
}

// Verbosef prints with -v or -d.
func (l *Logger) Verbosef(format string, a ...any) { l.at(Verbose, "VERBOSE: ", format, a...) }

// Debugf prints with -d.
func (l *Logger) Debugf(format string, a ...any) { l.at(Debug, "DEBUG:   ", format, a...) }

func (l *Logger) at(min Level, prefix, format string, a ...any) {
	if l == nil || l.level < min {
		return
	}
	fmt.Fprintf(l.w, prefix+format+"\n", a...)
}

// Fatal formats the one line a launcher error gets on stderr. An error
// text of several lines (cobra's "Did you mean this?" suggestions, a tool's
// message) is joined into one, each line trimmed, blank lines dropped, and
// clipped (clip) so that a path of kilobytes cannot fill the screen.
func Fatal(w io.Writer, err error) {
	fmt.Fprintf(w, "FATAL:   %s\n", clip(joinLines(err.Error())))
}

// What clip keeps: a word (a run of non-blank bytes, such as a path) of up
// to maxWord bytes, else its first and last keepWord bytes; a message of up
// to maxMessage bytes, else its first keepHead and last keepTail bytes.
const (
	maxWord    = 400
	keepWord   = 160
	maxMessage = 900
	keepHead   = 600
	keepTail   = 240
	ellipsis   = "..."
)

// clip shortens a one-line message: every word longer than maxWord keeps
// its start and end around "...", and a message still longer than
// maxMessage keeps its start and end. Cuts fall between UTF-8 characters.
func clip(s string) string {
	if len(s) <= maxWord {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if w := s[i:j]; len(w) > maxWord {
			b.WriteString(w[:cut(w, keepWord)])
			b.WriteString(ellipsis)
			b.WriteString(w[cut(w, len(w)-keepWord):])
		} else {
			b.WriteString(w)
		}
		for i = j; j < len(s) && (s[j] == ' ' || s[j] == '\t'); j++ {
		}
		b.WriteString(s[i:j])
		i = j
	}
	out := b.String()
	if len(out) > maxMessage {
		out = out[:cut(out, keepHead)] + " " + ellipsis + " " + out[cut(out, len(out)-keepTail):]
	}
	return out
}

// cut moves the byte offset i of s back to the start of a UTF-8 character.
func cut(s string, i int) int {
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// OneLine squeezes s, typically what a tool printed on stderr, into one
// line for an error message: every run of white space, newlines included,
// becomes one space, and none is left at either end.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// joinLines joins the non-blank lines of s with single spaces, each line
// trimmed of surrounding white space; s without a newline is left as it is.
// Unlike OneLine it keeps the spacing inside a line: a FATAL or WARNING
// line repeats a path or value as the user wrote it.
func joinLines(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}
