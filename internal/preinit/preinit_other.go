//go:build !cgo || !linux

package preinit

// Get reports that nothing was done: without cgo there is no constructor.
func Get() Result {
	return Result{Err: ErrNotTried, FD: -1}
}
