package container

import (
	"testing"

	"github.com/launch-hpc/launch/internal/environ"
)

func TestPasswdAndGroupFiles(t *testing.T) {
	alice := User{UID: 1001, GID: 1001, Name: "alice", Group: "alice", Home: "/home/alice", Shell: "/bin/bash"}
	cases := []struct {
		name, image string
		user        User
		passwd      string
	}{
		{"appended", "root:x:0:0:root:/root:/bin/sh\n", alice,
			"root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/bash\n"},
		{"same uid replaced", "root:x:0:0:root:/root:/bin/sh\nubuntu:x:1001:1001::/home/ubuntu:/bin/sh\n", alice,
			"root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/bash\n"},
		{"same name replaced", "alice:x:5:5::/nowhere:/bin/false\n", alice,
			"alice:x:1001:1001::/home/alice:/bin/bash\n"},
		{"no image file", "", User{UID: 7, GID: 8, Name: "u7", Home: "/h"}, "u7:x:7:8::/h:/bin/sh\n"},
		{"root keeps one root line", "root:x:0:0:root:/root:/bin/sh\n", User{UID: 0, GID: 0, Name: "root", Group: "root", Home: "/root", Shell: "/bin/bash"},
			"root:x:0:0::/root:/bin/bash\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(passwdFile([]byte(c.image), c.user)); got != c.passwd {
				t.Errorf("passwd\n got %q\nwant %q", got, c.passwd)
			}
		})
	}
	if got := string(groupFile([]byte("root:x:0:\nstaff:x:1001:\n"), alice)); got != "root:x:0:\nalice:x:1001:alice\n" {
		t.Errorf("group: got %q", got)
	}
}

func TestPayloadEnv(t *testing.T) {
	cfg := &Config{Env: []string{"FOO=1", "HOME=/wrong"}, User: User{Home: "/home/a"}, Mode: ModeShell}
	cfg.Image.Path = "/x/app.sif"
	env := payloadEnv(cfg)
	want := map[string]string{"FOO": "1", "HOME": "/home/a", "PATH": DefaultPath, "LAUNCH_CONTAINER": "/x/app.sif",
		"LAUNCH_NAME": "app.sif", "PS1": "Apptainer> ", "APPTAINER_CONTAINER": "/x/app.sif", "SINGULARITY_NAME": "app.sif", "APPTAINER_COMMAND": "shell", "APPTAINER_BIND": "", "APPTAINER_ENVIRONMENT": EnvironmentFile}
	for k, v := range want {
		if got := environ.Get(env, k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	n := 0
	for _, kv := range env {
		if len(kv) > 5 && kv[:5] == "HOME=" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("HOME set %d times in %q", n, env)
	}
}
