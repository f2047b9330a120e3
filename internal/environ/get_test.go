package environ

import "testing"

// TestGet: the last setting wins, and a name is never matched by its prefix.
func TestGet(t *testing.T) {
	env := []string{"LD_LIBRARY_PATH=/old", "X=1", "LD_LIBRARY_PATH=/new", "EMPTY="}
	for _, tc := range []struct{ key, want string }{
		{"LD_LIBRARY_PATH", "/new"}, {"LD", ""}, {"X", "1"}, {"EMPTY", ""}, {"MISSING", ""},
	} {
		if got := Get(env, tc.key); got != tc.want {
			t.Errorf("Get(%s) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
