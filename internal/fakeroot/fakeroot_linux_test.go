package fakeroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/subid"
)

func TestFindHelper(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "newuidmap")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	cases := []struct {
		configured, want, err string
	}{
		{"", exe, ""},
		{"newuidmap", exe, ""},
		{exe, exe, ""},
		{plain, "", "is not an executable file"},
		{"/nonexistent/newuidmap", "", "tools.newuidmap"},
		{"no-such-helper", "", "not installed here"},
	}
	for _, c := range cases {
		got, err := findHelper(c.configured, "newuidmap")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("findHelper(%q) = %q, %v; want an error with %q", c.configured, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("findHelper(%q) = %q, %v; want %q", c.configured, got, err, c.want)
		}
	}
}

func TestPasswdName(t *testing.T) {
	data := []byte("root:x:0:0:root:/root:/bin/sh\n#x:x:5:5\nalice:x:1001:1001::/home/alice:/bin/sh\n")
	for uid, want := range map[int]string{0: "root", 1001: "alice", 7: ""} {
		if got := passwdName(data, uid); got != want {
			t.Errorf("passwdName(%d) = %q, want %q", uid, got, want)
		}
	}
}

func TestForUserRoot(t *testing.T) {
	m, err := ForUser("root", 0, 0, Tools{NewUIDMap: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Ranges() || m.Missing != "" || !Identity(m.UID, m.GID) {
		t.Errorf("root's maps %+v: want the identity over %d ids, no helpers, no warning", m, subid.Count)
	}
	if Identity([]subid.Mapping{{Inside: 0, Outside: 1000, Size: 1}}, []subid.Mapping{{Inside: 0, Outside: 1000, Size: 1}}) {
		t.Error("a map of root alone onto a user is not the identity")
	}
}

func TestRemoveAtRefusesPaths(t *testing.T) {
	for _, n := range []string{"", ".", "..", "a/b"} {
		if err := RemoveAt(-1, n); err == nil || !strings.Contains(err.Error(), "not a plain name") {
			t.Errorf("RemoveAt(%q) = %v, want a refusal", n, err)
		}
	}
}
