package mountplan

// Default is one default mount as a user and a site name it: the one table
// of those names. --no-mount takes Name, the plan's ops carry it (Op.Name),
// and where Switch is set launch.conf has an on/off key of the same name
// under [mounts] (the config.Mounts field whose toml tag is Name;
// config.Mounts.Off reads them by that tag, and a test in config checks
// that the two agree).
type Default struct {
	// Name is the mount's name.
	Name string
	// What says what the mount is, for help and messages.
	What string
	// Switch is true when launch.conf [mounts] can switch it off.
	Switch bool
}

// Defaults returns the table of default mounts, in the order help lists them.
func Defaults() []Default {
	return []Default{
		{"proc", "the host's /proc (a new one with a PID namespace)", true},
		{"sys", "the host's /sys", true},
		{"dev", "the host's /dev (a minimal one with --contain)", true},
		{"tmp", "the host's /tmp and /var/tmp (private ones with --contain)", true},
		{"home", "the home directory (an empty one with --contain)", true},
		{"cwd", "the current working directory", true},
		{"passwd", "a generated /etc/passwd with the user's entry", false},
		{"group", "a generated /etc/group with the user's groups", false},
		{"hosts", "the host's /etc/hosts", true},
		{"resolv", "the host's /etc/resolv.conf", true},
		{"localtime", "the host's /etc/localtime", true},
	}
}

// DefaultNames lists the names --no-mount accepts.
func DefaultNames() []string {
	d := Defaults()
	names := make([]string, len(d))
	for i, m := range d {
		names[i] = m.Name
	}
	return names
}

// validName reports whether n names a default mount.
func validName(n string) bool {
	for _, d := range Defaults() {
		if d.Name == n {
			return true
		}
	}
	return false
}
