// Package msg prints the launcher's own messages on stderr at the level the
// user chose (-q, default, -v, -d). It owns nothing else: payload output never
// passes through here.
package msg

import (
	"fmt"
	"io"
	"os"
	"strings"
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

// Warnf prints a warning unless quiet.
func (l *Logger) Warnf(format string, a ...any) { l.at(Normal, "WARNING: ", format, a...) }

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
// message) is joined into one, each line trimmed, blank lines dropped.
func Fatal(w io.Writer, err error) {
	fmt.Fprintf(w, "FATAL:   %s\n", joinLines(err.Error()))
}

// joinLines joins the non-blank lines of s with single spaces, each line
// trimmed of surrounding white space; s without a newline is left as it is.
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
