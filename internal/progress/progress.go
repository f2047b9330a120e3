// Package progress shows what a long command (pull, build) is doing on
// stderr: one line per step, and, when stderr is a terminal, a progress bar
// for byte counts (downloads, layer extraction) redrawn in place. -q
// silences both. It only formats; it decides nothing.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Reporter prints steps and bars to one writer.
type Reporter struct {
	w     io.Writer
	tty   bool
	quiet bool
	mu    sync.Mutex
}

// New returns a Reporter on w. Bars are drawn only when tty; nothing is
// printed when quiet.
func New(w io.Writer, tty, quiet bool) *Reporter { return &Reporter{w: w, tty: tty, quiet: quiet} }

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Step prints one line saying what happens next.
func (r *Reporter) Step(format string, a ...any) {
	if r == nil || r.quiet {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, format+"\n", a...)
}

// Bar is a byte counter shown as a bar on a terminal.
type Bar struct {
	r     *Reporter
	label string
	total int64
	done  int64
	last  time.Time
}

// Bar starts a bar for total bytes (total < 0: unknown). On a terminal it
// is redrawn as bytes are added; elsewhere it prints nothing.
func (r *Reporter) Bar(label string, total int64) *Bar {
	return &Bar{r: r, label: label, total: total}
}

// Add counts n more bytes.
func (b *Bar) Add(n int64) {
	if b == nil || b.r == nil || b.r.quiet || !b.r.tty {
		return
	}
	b.done += n
	if now := time.Now(); now.Sub(b.last) >= 100*time.Millisecond {
		b.last = now
		b.draw("")
	}
}

// Reader is r with what is read through it added to the bar.
func (b *Bar) Reader(r io.Reader) io.Reader { return &barReader{r, b} }

type barReader struct {
	r   io.Reader
	bar *Bar
}

func (br *barReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	br.bar.Add(int64(n))
	return n, err
}

// Done finishes the bar's line.
func (b *Bar) Done() {
	if b == nil || b.r == nil || b.r.quiet || !b.r.tty {
		return
	}
	b.draw("\n")
}

func (b *Bar) draw(end string) {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	const width = 30
	if b.total > 0 {
		frac := float64(b.done) / float64(b.total)
		if frac > 1 {
			frac = 1
		}
		n := int(frac * width)
		bar := ""
		for i := 0; i < width; i++ {
			if i < n {
				bar += "="
			} else {
				bar += " "
			}
		}
		fmt.Fprintf(b.r.w, "\r%-24s [%s] %s / %s %3.0f%%\033[K%s", b.label, bar, Size(b.done), Size(b.total), frac*100, end)
		return
	}
	fmt.Fprintf(b.r.w, "\r%-24s %s\033[K%s", b.label, Size(b.done), end)
}

// Size formats a byte count.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
