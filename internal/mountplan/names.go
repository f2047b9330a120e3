package mountplan

import "strings"

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

// Apptainer's other --no-mount names: what is not one of launch's default
// mounts, or is a part of one.
const (
	// NoDevpts leaves out the devpts instance of --contain's minimal /dev
	// (and its /dev/ptmx).
	NoDevpts = "devpts"
	// NoHostfs is Apptainer's host file systems (apptainer.conf mount
	// hostfs): launch mounts none, so it changes nothing.
	NoHostfs = "hostfs"
	// NoBindPaths leaves out every site bind (launch.conf mounts.system,
	// Apptainer's bind path entries); an absolute path leaves out the site
	// bind of that destination.
	NoBindPaths = "bind-paths"
)

// NoMountHelp says what --no-mount takes, for its help.
func NoMountHelp() string {
	return strings.Join(DefaultNames(), ",") + "," + NoDevpts + "," + NoHostfs + "," + NoBindPaths +
		", or a site bind's destination"
}

// validName reports whether n is something --no-mount can leave out.
func validName(n string) bool {
	if n == NoDevpts || n == NoHostfs || n == NoBindPaths || strings.HasPrefix(n, "/") {
		return true
	}
	for _, d := range Defaults() {
		if d.Name == n {
			return true
		}
	}
	return false
}
