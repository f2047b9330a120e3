package regauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"docker://Registry.Example.org:5000", "registry.example.org:5000", ""},
		{"oras://127.0.0.1:5000/group/app:tag", "127.0.0.1:5000", ""},
		{"127.0.0.1:5000", "127.0.0.1:5000", ""},
		{"docker://docker.io", dockerHubKey, ""},
		{"https://index.docker.io/v1/", dockerHubKey, ""},
		{"", "", "does not name a registry"},
		{"docker://", "", "does not name a registry"},
		{"docker://a b", "", "does not name a registry"},
	} {
		got, err := Key(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Key(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Key(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s := &Store{Path: filepath.Join(t.TempDir(), "dot-launch", FileName)}
	if _, ok, err := s.Lookup("docker://h:1"); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	if err := s.Set("docker://h:1", Credential{"u", "p:w"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("oras://docker.io", Credential{"hub", "x"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v, want 0600", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(s.Path)); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode())
	}
	c, ok, err := s.Lookup("oras://h:1/repo:tag")
	if !ok || err != nil || c != (Credential{"u", "p:w"}) {
		t.Errorf("lookup: %v %v %v", c, ok, err)
	}
	l, _ := s.Lookuper()
	if c, ok := l("index.docker.io"); !ok || c.Username != "hub" {
		t.Errorf("docker hub lookup: %v %v", c, ok)
	}
	ents, err := s.List()
	if err != nil || len(ents) != 2 || ents[0].Registry != "h:1" || ents[1].Registry != "index.docker.io" {
		t.Errorf("list: %v %v", ents, err)
	}
	if err := s.Remove("h:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("h:1"); err == nil {
		t.Error("second remove: no error")
	}
	if names, _ := os.ReadDir(filepath.Dir(s.Path)); len(names) != 1 {
		t.Errorf("left behind: %v", names)
	}
}

func TestStoreHostile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere.json")
	os.WriteFile(target, []byte(`{"auths":{}}`), 0o600)
	for name, setup := range map[string]func(p string){
		"symbolic link": func(p string) { os.Symlink(target, p) },
		"writable by other users": func(p string) {
			os.WriteFile(p, []byte(`{}`), 0o600)
			os.Chmod(p, 0o666)
		},
		"not a regular file": func(p string) { os.Mkdir(p, 0o700) },
		"not a JSON object":  func(p string) { os.WriteFile(p, []byte(`[1`), 0o600) },
		"too large":          func(p string) { os.WriteFile(p, make([]byte, maxFile+1), 0o600) },
	} {
		d := filepath.Join(t.TempDir(), "l")
		os.Mkdir(d, 0o700)
		p := filepath.Join(d, FileName)
		setup(p)
		s := &Store{Path: p}
		if _, _, err := s.Lookup("h"); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: lookup err %v", name, err)
		}
		if err := s.Set("h", Credential{"u", "p"}); err == nil {
			t.Errorf("%s: set succeeded", name)
		}
	}
	d := filepath.Join(t.TempDir(), "open")
	os.Mkdir(d, 0o777)
	os.Chmod(d, 0o777)
	if err := (&Store{Path: filepath.Join(d, FileName)}).Set("h", Credential{"u", "p"}); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("world-writable directory: %v", err)
	}
}
