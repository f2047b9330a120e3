package deffile

import "fmt"

// Error is one problem in a definition file or a build-arg file. Its text is
// one line, "FILE:LINE: Msg" ("FILE: Msg" when Line is 0), ready for the CLI
// to print after "FATAL: ".
type Error struct {
	File string // the file as the user named it
	Line int    // 1-based; 0 when the problem is not on one line
	Msg  string
}

// Error returns "FILE:LINE: Msg".
func (e *Error) Error() string { return position(e.File, e.Line) + e.Msg }

// Warning is something Apptainer accepts that launch wants the user to know
// about (an unused build argument, a header given twice). The parser returns
// warnings as data; the caller decides how to print them.
type Warning struct {
	File string
	Line int
	Msg  string
}

// String returns "FILE:LINE: Msg".
func (w Warning) String() string { return position(w.File, w.Line) + w.Msg }

func position(file string, line int) string {
	switch {
	case file == "" && line == 0:
		return ""
	case line == 0:
		return file + ": "
	case file == "":
		return fmt.Sprintf("line %d: ", line)
	default:
		return fmt.Sprintf("%s:%d: ", file, line)
	}
}
