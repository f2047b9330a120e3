// Package regauth keeps the registry credentials of `launch registry login`
// for docker:// and oras:// sources: a Docker-style config.json in the
// user's own ~/.launch/docker-config.json (Apptainer keeps its own in
// ~/.apptainer/docker-config.json), mode 0600, replaced atomically. It
// reads the file as hostile input (no links, a regular file of the caller's
// that nobody else can write, bounded) and knows how registry names map to
// its keys (Docker Hub's historical key).
//
// It has no dependencies beyond the standard library and x/sys, and does no
// network I/O: logging in against the registry is the caller's (launch-oci).
package regauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/launch-hpc/launch/internal/paths"
)

// FileName is the credentials file's name in the user's launch directory.
const FileName = "docker-config.json"

// maxFile bounds the read of the credentials file.
const maxFile = 1 << 20

// dockerHubKey is the key Docker (and Apptainer) store Docker Hub under.
const dockerHubKey = "https://index.docker.io/v1/"

// Credential is a user name and password (or token) for one registry.
type Credential struct {
	Username, Password string
}

// Entry is one stored login, for listing.
type Entry struct {
	// Registry is HOST[:PORT] (Docker Hub as index.docker.io).
	Registry string
	Username string
}

// DefaultPath is ~/.launch/docker-config.json.
func DefaultPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding your home directory for the registry credentials: %w", err)
	}
	return paths.UserDir(home, FileName), nil
}

// Key is the key a registry's credentials are stored under: HOST[:PORT],
// lower-case, with Docker Hub's names under Docker's historical key. It
// takes a bare host, a URI (docker://host, oras://host/path, https://host)
// or a reference (host/repo:tag).
func Key(registry string) (string, error) {
	s := strings.TrimSpace(registry)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.TrimPrefix(s, "//")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(s)
	if s == "" || strings.ContainsAny(s, " \t@?#") {
		return "", fmt.Errorf("%q does not name a registry (want docker://HOST[:PORT] or oras://HOST[:PORT])", registry)
	}
	if u, err := url.Parse("//" + s); err != nil || u.Host != s {
		return "", fmt.Errorf("%q does not name a registry (want docker://HOST[:PORT] or oras://HOST[:PORT])", registry)
	}
	switch s {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return dockerHubKey, nil
	}
	return s, nil
}

// registryOf is the host a stored key names (Docker-style keys may be URLs).
func registryOf(key string) string {
	if key == dockerHubKey {
		return "index.docker.io"
	}
	k, err := Key(key)
	if err != nil {
		return key
	}
	if k == dockerHubKey {
		return "index.docker.io"
	}
	return k
}

// config is the file's content: Docker's config.json shape. Keys other
// than "auths" are kept as they are.
type config struct {
	other map[string]json.RawMessage
	auths map[string]authEntry
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func (a authEntry) credential() (Credential, bool) {
	if a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return Credential{}, false
		}
		u, p, ok := strings.Cut(string(b), ":")
		return Credential{Username: u, Password: p}, ok && u != ""
	}
	if a.Username != "" {
		return Credential{Username: a.Username, Password: a.Password}, true
	}
	return Credential{}, false
}

// parse reads the file's bytes (empty: no logins).
func parse(b []byte, path string) (*config, error) {
	c := &config{other: map[string]json.RawMessage{}, auths: map[string]authEntry{}}
	if len(strings.TrimSpace(string(b))) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c.other); err != nil {
		return nil, fmt.Errorf("registry credentials %s: not a JSON object: %w", path, err)
	}
	if raw, ok := c.other["auths"]; ok {
		if err := json.Unmarshal(raw, &c.auths); err != nil {
			return nil, fmt.Errorf("registry credentials %s: \"auths\" is malformed: %w", path, err)
		}
		delete(c.other, "auths")
	}
	if c.auths == nil {
		c.auths = map[string]authEntry{}
	}
	return c, nil
}

func (c *config) marshal() ([]byte, error) {
	m := map[string]any{}
	for k, v := range c.other {
		m[k] = v
	}
	m["auths"] = c.auths
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// find returns the entry for registry key k, matching Docker-style keys
// written as URLs too.
func (c *config) find(k string) (string, authEntry, bool) {
	if a, ok := c.auths[k]; ok {
		return k, a, true
	}
	for key, a := range c.auths {
		if kk, err := Key(key); err == nil && kk == k {
			return key, a, true
		}
	}
	return "", authEntry{}, false
}

// Store is the credentials file at Path.
type Store struct {
	// Path is the file (its directory is created, mode 0700, if missing).
	Path string
}

// Open is the store at authFile (--authfile, as Apptainer names it; made
// absolute), or with "" the one at DefaultPath. The file is read and
// written under the same rules either way.
func Open(authFile string) (*Store, error) {
	if authFile == "" {
		return Default()
	}
	p, err := filepath.Abs(authFile)
	if err != nil {
		return nil, fmt.Errorf("--authfile %s: %w", authFile, err)
	}
	return &Store{Path: p}, nil
}

// Default is the store at DefaultPath.
func Default() (*Store, error) {
	p, err := DefaultPath()
	if err != nil {
		return nil, err
	}
	return &Store{Path: p}, nil
}

// Lookup returns the stored credential for registry (a host or URI).
// A missing file holds none; a file that is not safe to read is an error.
func (s *Store) Lookup(registry string) (Credential, bool, error) {
	k, err := Key(registry)
	if err != nil {
		return Credential{}, false, err
	}
	b, err := readFile(s.Path)
	if err != nil || b == nil {
		return Credential{}, false, err
	}
	c, err := parse(b, s.Path)
	if err != nil {
		return Credential{}, false, err
	}
	_, a, ok := c.find(k)
	if !ok {
		return Credential{}, false, nil
	}
	cr, ok := a.credential()
	return cr, ok, nil
}

// Lookuper returns a lookup of the stored credentials read once now, for
// the many requests of one pull. A missing file is no credentials.
func (s *Store) Lookuper() (func(registry string) (Credential, bool), error) {
	b, err := readFile(s.Path)
	if err != nil {
		return nil, err
	}
	c, err := parse(b, s.Path)
	if err != nil {
		return nil, err
	}
	return func(registry string) (Credential, bool) {
		k, err := Key(registry)
		if err != nil {
			return Credential{}, false
		}
		_, a, ok := c.find(k)
		if !ok {
			return Credential{}, false
		}
		return a.credential()
	}, nil
}

// List returns the stored logins, sorted by registry.
func (s *Store) List() ([]Entry, error) {
	b, err := readFile(s.Path)
	if err != nil {
		return nil, err
	}
	c, err := parse(b, s.Path)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for k, a := range c.auths {
		cr, ok := a.credential()
		if !ok {
			continue
		}
		out = append(out, Entry{Registry: registryOf(k), Username: cr.Username})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Registry < out[j].Registry })
	return out, nil
}

// Set stores cred for registry, replacing any, atomically.
func (s *Store) Set(registry string, cred Credential) error {
	k, err := Key(registry)
	if err != nil {
		return err
	}
	if cred.Username == "" || strings.Contains(cred.Username, ":") {
		return fmt.Errorf("registry user name %q: must be non-empty and have no ':'", cred.Username)
	}
	return update(s.Path, func(c *config) (bool, error) {
		if old, _, ok := c.find(k); ok {
			delete(c.auths, old)
		}
		c.auths[k] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password))}
		return true, nil
	})
}

// ErrNotLoggedIn is returned by Remove for a registry with no stored login.
var ErrNotLoggedIn = errors.New("no stored login")

// Remove deletes the stored credential for registry.
func (s *Store) Remove(registry string) error {
	k, err := Key(registry)
	if err != nil {
		return err
	}
	return update(s.Path, func(c *config) (bool, error) {
		old, _, ok := c.find(k)
		if !ok {
			return false, fmt.Errorf("%s: %w", registryOf(k), ErrNotLoggedIn)
		}
		delete(c.auths, old)
		return true, nil
	})
}
