package e2e

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPullHTTP: pull fetches a SIF file from an http:// or https:// URL, as
// Apptainer does (named after the URL's last part without OUT, TLS checked
// against the system's roots: here SSL_CERT_FILE), and what is not a SIF,
// a failed answer, a body cut short or one past build.max_unpacked_size
// is one error line that leaves nothing behind.
func TestPullHTTP(t *testing.T) {
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "marker"), []byte("from-the-web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := buildSIF(t, tree)
	sif, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/files/app.sif", func(w http.ResponseWriter, _ *http.Request) { w.Write(sif) })
	mux.HandleFunc("/files/notes.txt", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(strings.Repeat("text\n", 100))) })
	mux.HandleFunc("/files/short.sif", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(sif)))
		w.Write(sif[:len(sif)/2]) // the handler returns: the connection ends early
	})
	plain := httptest.NewServer(mux)
	defer plain.Close()
	mux.HandleFunc("/files/down.sif", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/files/app.sif", http.StatusFound) // from https: a downgrade
	})
	tls := httptest.NewTLSServer(mux)
	defer tls.Close()
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tls.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newOCIEnv(t)
	env := append(e.env(), "SSL_CERT_FILE="+roots)

	work := t.TempDir()
	o := runOpts{Dir: work, Env: env}
	wantOK(t, launchWith(t, o, "pull", "-q", plain.URL+"/files/app.sif"))
	wantOK(t, launchWith(t, o, "pull", "-q", "tls.sif", tls.URL+"/files/app.sif"))
	for _, name := range []string{"app.sif", "tls.sif"} {
		r := launch(t, "exec", filepath.Join(work, name), "cat", "/marker")
		if wantOK(t, r); r.Stdout != "from-the-web\n" {
			t.Errorf("%s: %q", name, r.Stdout)
		}
	}
	// exec does not fetch: it says to pull.
	wantFatal(t, launchWith(t, o, "exec", plain.URL+"/files/app.sif", "true"), "launch pull")
	// Without the server's certificate among the roots, https fails.
	wantFatal(t, launchWith(t, runOpts{Dir: work, Env: e.env()}, "pull", "-q", "untrusted.sif", tls.URL+"/files/app.sif"), "certificate")
	for _, tc := range []struct {
		name string
		env  []string
		url  string
		want string
	}{
		{"not found", nil, plain.URL + "/files/none.sif", "404"},
		{"not a SIF", nil, plain.URL + "/files/notes.txt", "not a SIF file"},
		{"cut short", nil, plain.URL + "/files/short.sif", "unexpected EOF"},
		{"https redirected to http", nil, tls.URL + "/files/down.sif", "without TLS"},
		{"too large", withConf(t, "[build]\nmax_unpacked_size = \"4k\"\n"), plain.URL + "/files/app.sif", "build.max_unpacked_size"},
		{"no host", nil, "https:///app.sif", "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := launchWith(t, runOpts{Dir: dir, Env: append(append([]string{}, env...), tc.env...)}, "pull", "-q", "out.sif", tc.url)
			wantFatal(t, r, tc.want)
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a failed pull left %v", ents)
			}
			noTempLeft(t, e.tmp)
		})
	}
	// A password in the URL is not printed (the progress line included).
	secret := strings.Replace(plain.URL, "http://", "http://user:s3cr3t@", 1) + "/files/none.sif"
	r := launchWith(t, runOpts{Dir: t.TempDir(), Env: env}, "pull", "out.sif", secret)
	if r.Code != 255 || !strings.Contains(lastLine(r.Stderr), "404") || !strings.Contains(r.Stderr, "Downloading") {
		t.Errorf("pull of a missing file: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stderr+r.Stdout, "s3cr3t") {
		t.Errorf("the URL's password was printed: %q", r.Stderr)
	}
	noTempLeft(t, e.tmp)
}
