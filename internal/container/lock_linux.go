package container

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// takeLock takes the lock of the overlay o on fd, without waiting:
// exclusive for a writable one, shared for a read-only one.
func takeLock(fd int, o Overlay) error {
	how := unix.LOCK_EX
	if o.ReadOnly {
		how = unix.LOCK_SH
	}
	if err := unix.Flock(fd, how|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			if o.ReadOnly {
				return fmt.Errorf("overlay %s is in use read-write by another running container; "+
					"a read-only overlay must not change under a container", o.Dir)
			}
			return fmt.Errorf("overlay %s is in use by another running container; "+
				"a writable overlay can serve one container at a time", o.Dir)
		}
		return fmt.Errorf("overlay %s: locking it: %w", o.Dir, err)
	}
	return nil
}
