package defbuild

import "testing"

func TestVarName(t *testing.T) {
	for in, want := range map[string]string{"foo": "foo", "my-app.v2": "my_app_v2", "A_b9": "A_b9", "café x": "caf__x", "": ""} {
		if got := varName(in); got != want {
			t.Errorf("varName(%q) = %q, want %q", in, got, want)
		}
	}
}
