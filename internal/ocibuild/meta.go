package ocibuild

import (
	"encoding/json"
	"fmt"
	"strings"

	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/launch-hpc/launch/internal/image"
)

// SIF data objects that keep the OCI image configuration.
const (
	// OCIConfigObject is the image configuration's "config" section, as
	// Apptainer stores it (its name and content).
	OCIConfigObject = "oci-config.json"
	// OCIImageConfigObject is the whole image configuration blob, byte for
	// byte as the image had it.
	OCIImageConfigObject = image.OCIConfigObject
)

// isEnvName reports whether a shell accepts s as a variable name.
func isEnvName(s string) bool {
	for i, c := range s {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// envScript is /.singularity.d/env/10-docker2singularity.sh for the image
// environment env ("KEY=VALUE" strings), in the form Apptainer writes: PATH
// is set as the image says; every other variable only when the host
// environment does not already set it. Names a shell cannot take are left
// out and returned.
func envScript(env []string) (string, []string) {
	var b strings.Builder
	var bad []string
	b.WriteString("#!/bin/sh\n")
	for _, kv := range env {
		k, v, hasValue := strings.Cut(kv, "=")
		if !isEnvName(k) {
			bad = append(bad, k)
			continue
		}
		switch {
		case !hasValue:
			fmt.Fprintf(&b, "export %s=\"${%s:-}\"\n", k, k)
		case k == "PATH":
			fmt.Fprintf(&b, "export %s=%s\n", k, dquote(v))
		default:
			fmt.Fprintf(&b, "export %s=\"${%s:-%s}\"\n", k, k, dquote(v)[1:len(dquote(v))-1])
		}
	}
	return b.String(), bad
}

// dquote quotes s for a POSIX shell inside double quotes.
func dquote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(s) + `"`
}

// squote quotes s for a POSIX shell inside single quotes.
func squote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func squoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = squote(a)
	}
	return strings.Join(q, " ")
}

// runscript is /.singularity.d/runscript for an image's Entrypoint, Cmd and
// WorkingDir, run the way Docker runs them: ENTRYPOINT followed by the
// arguments of `launch run`, or by CMD when there are none; no shell
// evaluation of either; in WORKDIR.
func runscript(c ispec.ImageConfig) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("# Written by launch from the OCI image configuration: ENTRYPOINT, then the\n")
	b.WriteString("# arguments given to `launch run`, or CMD when there are none; in WORKDIR.\n")
	fmt.Fprintf(&b, "OCI_ENTRYPOINT=%s\n", squote(squoteAll(c.Entrypoint)))
	fmt.Fprintf(&b, "OCI_CMD=%s\n", squote(squoteAll(c.Cmd)))
	if len(c.Cmd) > 0 {
		fmt.Fprintf(&b, "if [ $# -eq 0 ]; then\n\tset -- %s\nfi\n", squoteAll(c.Cmd))
	}
	if len(c.Entrypoint) > 0 {
		fmt.Fprintf(&b, "set -- %s \"$@\"\n", squoteAll(c.Entrypoint))
	}
	if c.WorkingDir != "" {
		fmt.Fprintf(&b, "cd %s || { echo \"FATAL:   cannot change to the image's working directory %s\" >&2; exit 255; }\n",
			squote(c.WorkingDir), strings.ReplaceAll(c.WorkingDir, `"`, ""))
	}
	b.WriteString("if [ $# -eq 0 ]; then\n\techo \"FATAL:   this image has no ENTRYPOINT or CMD: give a command to run\" >&2\n\texit 255\nfi\n")
	b.WriteString("exec \"$@\"\n")
	return b.String()
}

// labelsJSON is /.singularity.d/labels.json for the image labels.
func labelsJSON(labels map[string]string) ([]byte, error) {
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.MarshalIndent(labels, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("writing labels: %w", err)
	}
	return append(b, '\n'), nil
}

// configSection returns the "config" member of a raw image configuration,
// byte for byte ("{}" when there is none).
func configSection(raw []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m["config"]) == 0 || string(m["config"]) == "null" {
		return []byte("{}")
	}
	return m["config"]
}
