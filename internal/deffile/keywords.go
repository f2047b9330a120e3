package deffile

import (
	"sort"
	"strings"
)

// headerKeywords is every header keyword Apptainer's parser accepts (its
// validHeaders list), keyed by the lower-case spelling the parser compares
// with, with the spelling Render writes and who reads it. Apptainer accepts
// every keyword with every agent and ignores the ones the agent does not
// read; so does this package. OtherURL<N> (any decimal N) is matched by
// lookupHeader.
var headerKeywords = map[string]struct{ name, use string }{
	"bootstrap":    {"Bootstrap", "every stage: the bootstrap agent; must be the first header line"},
	"from":         {"From", "docker, oci, oci-archive, docker-archive, localimage, library, shub, oras, docker-daemon, buildkit, dockerfile"},
	"stage":        {"Stage", "every stage: the name %files from NAME refers to"},
	"includecmd":   {"IncludeCmd", "docker (a Singularity 2 keyword; Apptainer parses it and ignores it)"},
	"fingerprints": {"Fingerprints", "localimage, library, oras: signing keys the base SIF must verify against"},
	"registry":     {"Registry", "docker: registry prefixed to From"},
	"namespace":    {"Namespace", "docker: namespace prefixed to From"},
	"library":      {"Library", "library: the Library API server"},
	"osversion":    {"OSVersion", "debootstrap, yum, dnf, zypper"},
	"mirrorurl":    {"MirrorURL", "debootstrap, busybox, yum, dnf, zypper"},
	"updateurl":    {"UpdateURL", "yum, dnf, zypper"},
	"include":      {"Include", "debootstrap, yum, dnf, zypper, arch: extra packages"},
	"setopt":       {"SetOpt", "yum, dnf"},
	"confurl":      {"ConfURL", "arch: pacman.conf to use"},
	"product":      {"Product", "zypper (SLE)"},
	"user":         {"User", "zypper (SLE)"},
	"regcode":      {"Regcode", "zypper (SLE)"},
	"productpgp":   {"ProductPGP", "zypper (SLE)"},
	"registerurl":  {"RegisterURL", "zypper (SLE)"},
	"modules":      {"Modules", "zypper (SLE)"},
	"target":       {"Target", "buildkit, dockerfile"},
	"frontend":     {"Frontend", "buildkit, dockerfile"},
	"filename":     {"Filename", "buildkit, dockerfile"},
	"buildargs":    {"BuildArgs", "buildkit, dockerfile"},
}

// lookupHeader returns the spelling Render writes for the lower-case header
// keyword key, and whether Apptainer accepts the keyword at all.
func lookupHeader(key string) (string, bool) {
	if k, ok := headerKeywords[key]; ok {
		return k.name, true
	}
	// zypper reads OtherURL0, OtherURL1, ...: Apptainer accepts "otherurl"
	// followed by any run of decimal digits.
	if n := strings.TrimPrefix(key, "otherurl"); n != key && n != "" && strings.Trim(n, "0123456789") == "" {
		return "OtherURL" + n, true
	}
	return "", false
}

// Section kinds: where a section's text ends up.
const (
	kindScript = iota // a script: Body is shell (or a #! program)
	kindFiles         // %files: SRC [DST] lines
	kindLabels        // %labels: KEY VALUE lines
	kindArgs          // %arguments: KEY=VALUE lines
	kindApp           // %app*: belongs to the app named on the section line
)

// sections is every section Apptainer's parser accepts (its validSections
// and appSections), lower case, without the %.
var sections = map[string]int{
	"pre":         kindScript, // on the host before the bootstrap (legacy, still run by Apptainer)
	"setup":       kindScript, // on the host after the bootstrap
	"files":       kindFiles,
	"post":        kindScript, // in the image, as root
	"environment": kindScript, // /.singularity.d/env/90-environment.sh
	"runscript":   kindScript, // /.singularity.d/runscript
	"startscript": kindScript, // /.singularity.d/startscript
	"test":        kindScript, // /.singularity.d/test, run after the build
	"labels":      kindLabels, // /.singularity.d/labels.json
	"help":        kindScript, // /.singularity.d/runscript.help (text, not run)
	"arguments":   kindArgs,   // defaults for {{ VAR }}
	"appinstall":  kindApp,
	"apprun":      kindApp,
	"appenv":      kindApp,
	"applabels":   kindApp,
	"apphelp":     kindApp,
	"appfiles":    kindApp,
	"apptest":     kindApp,
	"appstart":    kindApp,
}

// Agent describes one bootstrap agent (the value of the Bootstrap header).
type Agent struct {
	Name      string   // as written after "Bootstrap:" (case-sensitive, as in Apptainer)
	Supported bool     // launch can build from it
	Required  []string // header keywords the agent needs (lower case), as Apptainer requires them
	Why       string   // for an unsupported agent: why, and what to use instead
}

// agents is every bootstrap agent Apptainer knows (its conveyorPacker
// switch), and whether launch builds from it. One table: Parse, the error
// messages and the tests all read it.
var agents = []Agent{
	{Name: "docker", Supported: true, Required: []string{"from"}},
	{Name: "oci", Supported: true, Required: []string{"from"}},
	{Name: "oci-archive", Supported: true, Required: []string{"from"}},
	{Name: "docker-archive", Supported: true, Required: []string{"from"}},
	{Name: "localimage", Supported: true, Required: []string{"from"}},
	{Name: "scratch", Supported: true},
	{Name: "busybox", Supported: true, Required: []string{"mirrorurl"}},
	{Name: "debootstrap", Supported: true, Required: []string{"osversion", "mirrorurl"}},
	{Name: "library", Why: "launch does not speak the Library API; pull the image with another tool and use Bootstrap: localimage"},
	{Name: "shub", Why: "Singularity Hub is not supported; use Bootstrap: localimage with a downloaded image"},
	{Name: "oras", Why: "ORAS artifacts are not supported; use Bootstrap: docker for an OCI image, or localimage"},
	{Name: "docker-daemon", Why: "launch talks to no Docker daemon; `docker save` the image and use Bootstrap: docker-archive"},
	{Name: "yum", Why: "yum bootstraps are not supported; use Bootstrap: docker with a distribution image"},
	{Name: "dnf", Why: "dnf bootstraps are not supported; use Bootstrap: docker with a distribution image"},
	{Name: "zypper", Why: "zypper bootstraps are not supported; use Bootstrap: docker with a distribution image"},
	{Name: "arch", Why: "pacstrap bootstraps are not supported; use Bootstrap: docker with archlinux"},
	{Name: "buildkit", Why: "building Dockerfiles is not supported; build the image elsewhere and use Bootstrap: oci-archive"},
	{Name: "dockerfile", Why: "building Dockerfiles is not supported; build the image elsewhere and use Bootstrap: oci-archive"},
}

// LookupAgent returns the agent named name, and false when Apptainer does not
// know that agent either.
func LookupAgent(name string) (Agent, bool) {
	for _, a := range agents {
		if a.Name == name {
			return a, true
		}
	}
	return Agent{}, false
}

// SupportedAgents returns the names of the agents launch builds from, sorted.
func SupportedAgents() []string {
	var names []string
	for _, a := range agents {
		if a.Supported {
			names = append(names, a.Name)
		}
	}
	sort.Strings(names)
	return names
}
