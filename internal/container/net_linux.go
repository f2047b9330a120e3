package container

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// setUpNamespaces does what the further namespaces asked for need once the
// container is entered: the hostname of a new UTS namespace (--hostname),
// loopback up in a new network namespace (--net).
func setUpNamespaces(ns Namespaces) error {
	if ns.Hostname != "" {
		if err := unix.Sethostname([]byte(ns.Hostname)); err != nil {
			return fmt.Errorf("setting hostname %q: %w", ns.Hostname, err)
		}
	}
	if ns.Net {
		return loopbackUp()
	}
	return nil
}

// loopbackUp brings up "lo" in a new network namespace (--net), which starts
// with loopback down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	return nil
}
