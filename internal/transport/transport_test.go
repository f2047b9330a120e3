package transport

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// all is every transport constant.
var all = []string{Docker, Layout, Archive, DockerArchive, Oras}

// TestPreinitList: the C constructor's names_oci_source (which leaves a
// command line to Go) matches exactly the prefixes of the transports that
// exec takes (Runs), each with the right length, and Known lists the same.
func TestPreinitList(t *testing.T) {
	src, err := os.ReadFile("../preinit/preinit_linux.c")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	i := strings.Index(body, "static int names_oci_source(")
	if i < 0 {
		t.Fatal("preinit_linux.c has no names_oci_source")
	}
	body = body[i:]
	body = body[:strings.Index(body, "\n}\n")]
	var c []string
	for _, m := range regexp.MustCompile(`strncmp\(a, "([^"]*)", (\d+)\)`).FindAllStringSubmatch(body, -1) {
		if n, _ := strconv.Atoi(m[2]); n != len(m[1]) {
			t.Errorf("preinit_linux.c compares %d bytes of %q, which has %d", n, m[1], len(m[1]))
		}
		c = append(c, m[1])
	}
	if strings.Count(body, "strncmp") != len(c) {
		t.Errorf("names_oci_source has %d strncmp calls, the test read %d", strings.Count(body, "strncmp"), len(c))
	}
	var goList []string
	for _, n := range all {
		if Runs(n) {
			goList = append(goList, Prefix(n))
		}
	}
	slices.Sort(c)
	slices.Sort(goList)
	if !slices.Equal(c, goList) {
		t.Errorf("preinit_linux.c leaves %q to Go, exec takes %q", c, goList)
	}
	known := strings.Split(Known, ", ")
	slices.Sort(known)
	if !slices.Equal(known, goList) {
		t.Errorf("Known lists %q, exec takes %q", known, goList)
	}
}

func TestBootstrap(t *testing.T) {
	for _, tc := range []struct {
		agent, prefix string
		ok            bool
	}{
		{"docker", "docker://", true}, {"oci", "oci:", true}, {"oci-archive", "oci-archive:", true},
		{"docker-archive", "docker-archive:", true}, {"oras", "", false}, {"library", "", false}, {"busybox", "", false},
	} {
		p, ok := Bootstrap(tc.agent)
		if p != tc.prefix || ok != tc.ok {
			t.Errorf("Bootstrap(%q) = %q, %v; want %q, %v", tc.agent, p, ok, tc.prefix, tc.ok)
		}
	}
}

func TestIsWebFile(t *testing.T) {
	for s, want := range map[string]bool{
		"https://example.org/app.sif": true, "http://host/x.sif": true, "docker://alpine": false,
		"./https/app.sif": false, "oras://r/x": false, "httpx://h/x": false,
	} {
		if got := IsWebFile(s); got != want {
			t.Errorf("IsWebFile(%q) = %v, want %v", s, got, want)
		}
	}
}
