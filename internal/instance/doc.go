// Package instance owns the records of a user's running instances
// (`launch instance start|list|stop`, `launch exec instance://NAME`): where
// they are kept, how they are written (whole, by rename) and read (treated
// as hostile: no link followed, a regular file of the user's, bounded), and
// whether the process a record names is still the one it was (a pidfd,
// checked against the process's start time and owner, so that a recycled
// pid is never trusted). It also stops an instance (a signal, then SIGKILL
// after a timeout).
//
// An instance is the user's own process tree, with no daemon: its init is
// the container stage of a launch started detached (internal/cli); the
// record only says where that stage is. A record whose process is gone is
// stale and removed by the next list or start.
//
// It must not build or join containers (internal/container does), nor
// decide what an instance runs.
package instance
